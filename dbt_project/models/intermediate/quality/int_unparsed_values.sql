{#
    Values of the exports that a model reads as a number or a date and that did not
    convert: one row per load × raw table × column with at least one. Such a value
    becomes null where the models use it (macro try_cast) — it never stops a build — and
    is counted here, with the first example and where it came from. Values the ingestion
    types (the columns with a `type` in the source mappings) never get here: a row with
    one that does not convert is quarantined with its file and line.

    - asterisk__cdr.uniqueid: no `<epoch>.<counter>` core (int_call_legs then merges the
      leg by caller and start time only);
    - onec__invoice.invoice_number: no trailing digits (`60-Ч`), so no payment purpose
      can name it: the invoice stays open until matched by hand;
    - sales_plan.quarter: not `YYYY-Qn` (the plan row is not used).
#}
with

cdr as (
    select * from {{ ref('stg_asterisk__cdr') }}
),

invoices as (
    select * from {{ ref('stg_onec__invoice') }}
),

plan as (
    select * from {{ ref('int_sales_plan') }}
),

unparsed as (
    select
        _load_id as load_id,
        'asterisk__cdr' as table_name,
        'uniqueid' as column_name,
        uniqueid as value,
        _source_file as source_file,
        _line as line
    from cdr
    where
        uniqueid is not null
        and {{ uniqueid_epoch('uniqueid') }} is null

    union all

    select
        _load_id as load_id,
        'onec__invoice' as table_name,
        'invoice_number' as column_name,
        invoice_number as value,
        _source_file as source_file,
        _line as line
    from invoices
    where
        invoice_number is not null
        and {{ invoice_number_key('invoice_number') }} is null

    union all

    select
        cast(null as {{ dbt.type_string() }}) as load_id,
        'sales_plan' as table_name,
        'quarter' as column_name,
        quarter_label as value,
        'sales_plan.csv' as source_file,
        cast(null as bigint) as line
    from plan
    where quarter_start is null
),

final as (
    {%- set first = ["coalesce(source_file, '')", 'coalesce(line, 0)'] %}
    select
        load_id,
        table_name,
        column_name,
        count(*) as unparsed_count,
        {{ value_at_min('value', first) }} as example_value,
        min(source_file) as example_source_file,
        {{ value_at_min('line', first) }} as example_line
    from unparsed
    group by
        load_id,
        table_name,
        column_name
)

select * from final
