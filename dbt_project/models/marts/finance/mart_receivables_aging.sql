{{
    config(
        materialized='incremental',
        incremental_strategy=('delete+insert' if target.type == 'duckdb' else 'insert_overwrite'),
        partition_by=(none if target.type == 'duckdb' else ['as_of_date']),
        on_schema_change='fail',
        pre_hook="{{ incremental_delete_hook(receivables_stale_rows()) }}",
        post_hook="{{ incremental_record_loads_hook() }}",
    )
}}
{# the incremental window (macros/incremental.sql) reads these; declared so dbt orders the build #}
-- depends_on: {{ ref('stg_onec__invoice') }}
-- depends_on: {{ ref('stg_onec__bank_payment') }}
-- depends_on: {{ ref('stg_ingestion__load_manifest') }}
{#
    Receivables aging per as-of date × invoice: one row for every invoice that is open
    (open amount > 0) at the end of the as-of date D.
    - open_amount as of D = amount − payments applied on or before D
      (int_invoice_balances);
    - days_overdue = D − due date when positive, else 0 (not yet due, or due today);
    - bucket: `not_due` (0), `1-30`, `31-60`, `61-90`, `90+` (91 days and more).
    Snapshot dates (var `receivables_snapshot_grain`): `day` (default) = every day from
    the first invoice date to the as-of date (var `as_of`, default today), so the aging
    of any past date can be read back; `month_end` = month ends plus the as-of date, for
    very large registers. An invoice without a due date is due on its issue date.
#}
with

invoices as (
    select * from {{ ref('int_invoices') }}
),

days as (
    {{ receivables_days(ref('dim_date'), 'invoices') }}
),

snapshot_dates as (
    select
        days.date_day as as_of_date,
        days.is_month_end
    from days
    where {{ is_receivables_snapshot_date('days') }}
),

open_items as (
    {{ open_invoices_on('snapshot_dates', 'as_of_date', ref('int_invoice_balances')) }}
),

aged as (
    select
        open_items.*,
        invoices.invoice_number,
        invoices.customer_id,
        invoices.manager_id,
        invoices.issued_on,
        invoices.due_on,
        invoices.amount,
        case
            when open_items.as_of_date > invoices.due_on
                then {{ dbt.datediff('invoices.due_on', 'open_items.as_of_date', 'day') }}
            else 0
        end as days_overdue
    from open_items
    inner join invoices
        on open_items.invoice_id = invoices.invoice_id
),

final as (
    select
        cast(as_of_date as date) as as_of_date,
        cast(invoice_id as {{ dbt.type_string() }}) as invoice_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(days_overdue as integer) as days_overdue,
        cast({{ aging_bucket('days_overdue') }} as {{ dbt.type_string() }}) as bucket,
        cast(open_amount as decimal(18, 2)) as open_amount,
        cast(invoice_number as {{ dbt.type_string() }}) as invoice_number,
        cast(issued_on as date) as issued_on,
        cast(due_on as date) as due_on,
        cast(amount as decimal(18, 2)) as amount,
        cast(is_month_end as boolean) as is_month_end
    from aged
)

select * from final
{%- if is_incremental() %}
{{- incremental_report(receivables_window_start()) }}
-- incremental: the window of late or new files, days after the last stored one, and
-- (DuckDB) every invoice not stored any more
where final.as_of_date >= {{ receivables_window_start() }}
    or final.as_of_date > (select max(stored.as_of_date) from {{ this }} as stored)
    {%- if target.type == 'duckdb' %}
    or not exists (select 1 from {{ this }} as stored where stored.invoice_id = final.invoice_id)
    {%- endif %}
{%- endif %}
