{#
    Incremental builds of the large facts (fct_call, fct_payment, fct_stage_visit,
    mart_receivables_aging). Two strategies, both correct when files arrive late:

    1. Date window (fct_call, mart_receivables_aging). Which ingestion loads a model has
       already seen is kept in `<target schema>.incremental_load_state` (model, load_id),
       rewritten by the model's post-hook. On an incremental build the window starts at
       the earliest event date among the rows of loads the model has not seen yet (the
       late file's own rows, whatever its export date says), minus
       var('incremental_lookback_days') for effects that cross a day boundary. A pre-hook
       deletes the window from the table, and the model inserts it recomputed. When a load
       the model had seen is gone from the manifest (a backfill forgot it), the window is
       everything: the rows it fed cannot be located any more. Loads and event dates are
       read from the staging models (the version of each record the marts use, with the
       `_load_id` of the load that delivered it) and the manifest from
       stg_ingestion__load_manifest: no mart reads the raw layer.
    2. Row diff (fct_payment, fct_stage_visit): the model is recomputed from its
       (table-materialized) inputs and only the entities whose rows differ from the stored
       ones are deleted and inserted again; entities gone from the input are deleted by
       the post-hook. Exact by construction, whatever changed upstream.

    `dbt build --full-refresh` rebuilds every incremental model from scratch. On an
    engine other than DuckDB the models use insert_overwrite of date partitions: the
    batches below are then widened to whole partitions.
#}

{% macro incremental_state_relation() -%}
    {{ target.schema }}.incremental_load_state
{%- endmacro %}

{% macro incremental_far_past() -%}
    cast('0001-01-01' as date)
{%- endmacro %}

{% macro incremental_far_future() -%}
    cast('9999-12-31' as date)
{%- endmacro %}

{#- Loads (load ids) present in the manifest that `model_name` has not processed yet. -#}
{% macro incremental_new_loads(model_name) -%}
    select manifest.load_id
    from {{ ref('stg_ingestion__load_manifest') }} as manifest
    where manifest.load_id not in (
        select state.load_id
        from {{ incremental_state_relation() }} as state
        where state.model_name = '{{ model_name }}'
    )
{%- endmacro %}

{#-
    The first date to recompute: a scalar SQL expression. `events` is a list of
    (relation, date expression) pairs over staging models carrying `_load_id` (a mart
    reaches the raw layer only through them).
-#}
{% macro incremental_window_start(events, model_name=none) -%}
    {%- set name = model_name or this.identifier -%}
    (
        select
            case
                when exists (
                    select 1
                    from {{ incremental_state_relation() }} as state
                    where state.model_name = '{{ name }}'
                        and state.load_id not in (
                            select manifest.load_id from {{ ref('stg_ingestion__load_manifest') }} as manifest
                        )
                ) then {{ incremental_far_past() }}
                else coalesce(
                    cast(
                        {{ dbt.dateadd('day', -1 * var('incremental_lookback_days'), 'min(new_event_dates.event_date)') }}
                        as date
                    ),
                    {{ incremental_far_future() }}
                )
            end
        from (
            {%- for relation, date_expr in events %}
            select cast({{ date_expr }} as date) as event_date
            from {{ relation }}
            where _load_id in ({{ incremental_new_loads(name) }})
            {%- if not loop.last %}
            union all
            {%- endif %}
            {%- endfor %}
        ) as new_event_dates
    )
{%- endmacro %}

{#- on-run-start (dbt_project.yml): the state table, created once before models run in
    parallel (two models creating it at once conflict). -#}
{% macro incremental_state_create() -%}
    {%- if target.type == 'duckdb' %}
    create table if not exists {{ incremental_state_relation() }} (
        model_name {{ dbt.type_string() }},
        load_id {{ dbt.type_string() }}
    )
    {%- else %}
    {#- Spark tables without Delta/Iceberg have no `delete`: one partition per model,
        replaced whole by the post-hook (partition columns come last on Spark) -#}
    create table if not exists {{ incremental_state_relation() }} (
        load_id {{ dbt.type_string() }},
        model_name {{ dbt.type_string() }}
    )
    using parquet
    partitioned by (model_name)
    {%- endif %}
{%- endmacro %}

{#-
    Pre-hook of a date-window model: on an incremental DuckDB
    build delete the stale rows (`where_sql`: the window, and rows whose looked-up keys
    changed). The model then inserts the fresh rows that are not stored any more.
-#}
{% macro incremental_delete_hook(where_sql) -%}
    {%- if is_incremental() and target.type == 'duckdb' %}
    delete from {{ this }} where {{ where_sql }};
    {%- endif %}
{%- endmacro %}

{#- Post-hook: the model has now processed every load in the manifest. -#}
{% macro incremental_record_loads_hook(model_name=none) -%}
    {%- set name = model_name or this.identifier -%}
    {%- if target.type == 'duckdb' %}
    delete from {{ incremental_state_relation() }} where model_name = '{{ name }}';
    insert into {{ incremental_state_relation() }} (model_name, load_id)
    select distinct '{{ name }}', manifest.load_id from {{ ref('stg_ingestion__load_manifest') }} as manifest;
    {%- else %}
    {#- the model's partition replaced, in one statement (Spark's cursor runs one at a time).
        A dynamic-partition overwrite: it writes under a staging folder of its own, where a
        static one (`partition (model_name = '…')`) writes under the table's `_temporary`
        folder, which the first of two models' hooks running at once (dbt threads over a
        Thrift server) would delete under the other. Dynamic mode is set in the session
        first: in static mode this statement would replace every model's partition. -#}
    {%- if execute %}{% do run_query("set spark.sql.sources.partitionOverwriteMode = dynamic") %}{% endif %}
    insert overwrite table {{ incremental_state_relation() }} partition (model_name)
    select distinct manifest.load_id, '{{ name }}' as model_name
    from {{ ref('stg_ingestion__load_manifest') }} as manifest
    {%- endif %}
{%- endmacro %}

{#- Post-hook of a row-diff model: delete entities no longer in the input. -#}
{% macro incremental_delete_vanished_hook(key, input_relation, input_key=none) -%}
    {%- if is_incremental() and target.type == 'duckdb' %}
    delete from {{ this }}
    where not exists (
        select 1 from {{ input_relation }} as input
        where input.{{ input_key or key }} = {{ this }}.{{ key }}
    );
    {%- endif %}
{%- endmacro %}

{#-
    The batch of a row-diff model: every row of the entities (`key`) with a row in
    `fresh` that is not stored, or a stored row that is not in `fresh`. On engines that
    overwrite partitions (`partition_expr` given) whole partitions are returned.
-#}
{% macro incremental_row_diff(fresh, key, partition_expr=none) -%}
    {%- if is_incremental() %}
    {%- if target.type == 'duckdb' %}
    select * from {{ fresh }}
    where {{ key }} in (
        select {{ key }} from (
            (select * from {{ fresh }} except all select * from {{ this }})
            union all
            (select * from {{ this }} except all select * from {{ fresh }})
        ) as changed
    )
    {%- elif partition_expr %}
    {#- by name: a partitioned table keeps its partition column last, the model does not -#}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='quoted') | join(', ') %}
    select * from {{ fresh }}
    where {{ partition_expr }} in (
        select {{ partition_expr }} from (
            (select {{ columns }} from {{ fresh }} except select {{ columns }} from {{ this }})
            union all
            (select {{ columns }} from {{ this }} except select {{ columns }} from {{ fresh }})
        ) as changed
    )
    {%- else %}
    select * from {{ fresh }}
    {%- endif %}
    {%- else %}
    select * from {{ fresh }}
    {%- endif %}
{%- endmacro %}

{# ---- the date windows of fct_call and mart_receivables_aging ---------------------- #}

{% macro call_window_start() -%}
    {{ incremental_window_start([
        (ref('stg_asterisk__cdr'), 'started_at'),
        (ref('stg_cloud_pbx__call'), 'started_at'),
    ], 'fct_call') }}
{%- endmacro %}

{#- fct_call rows to recompute: the window, and calls whose manager or customer lookup
    (int_manager_keys / int_customer_keys, which any CRM file can change) differs now. -#}
{% macro fct_call_stale_rows() -%}
    call_date >= {{ call_window_start() }}
    or call_id in (
        select stored.call_id
        from {{ this }} as stored
        left join {{ ref('int_manager_keys') }} as manager_keys
            on manager_keys.source_system = case stored.source_system
                when 'asterisk' then 'asterisk_extension'
                else 'cloud_pbx_employee'
            end
            and manager_keys.source_key = stored.extension
        left join {{ ref('int_customer_keys') }} as customer_keys
            on customer_keys.source_system = 'phone'
            and customer_keys.source_key = stored.external_e164
        where stored.manager_id is distinct from cast(manager_keys.manager_id as {{ dbt.type_string() }})
            or stored.customer_id is distinct from cast(customer_keys.customer_id as {{ dbt.type_string() }})
    )
{%- endmacro %}

{% macro receivables_window_start() -%}
    {{ incremental_window_start([
        (ref('stg_onec__invoice'), 'issued_on'),
        (ref('stg_onec__bank_payment'), 'coalesce(received_on, doc_date)'),
    ], 'mart_receivables_aging') }}
{%- endmacro %}

{#- mart_receivables_aging rows to recompute: the window, dates after the as-of date, and
    invoices whose attributes (customer, manager, dates, amount) differ now. -#}
{% macro receivables_stale_rows() -%}
    as_of_date >= {{ receivables_window_start() }}
    or as_of_date > {{ as_of_date() }}
    or invoice_id in (
        select stored.invoice_id
        from (
            select distinct invoice_id, invoice_number, customer_id, manager_id, issued_on, due_on, amount
            from {{ this }}
        ) as stored
        left join {{ ref('int_invoices') }} as invoices
            on invoices.invoice_id = stored.invoice_id
        where invoices.invoice_id is null
            or stored.invoice_number is distinct from cast(invoices.invoice_number as {{ dbt.type_string() }})
            or stored.customer_id is distinct from cast(invoices.customer_id as {{ dbt.type_string() }})
            or stored.manager_id is distinct from cast(invoices.manager_id as {{ dbt.type_string() }})
            or stored.issued_on is distinct from cast(invoices.issued_on as date)
            or stored.due_on is distinct from cast(invoices.due_on as date)
            or stored.amount is distinct from cast(invoices.amount as decimal(18, 2))
    )
{%- endmacro %}

{#-
    On an incremental build, says in dbt's log how much of the manifest the model has still
    to process and where its window starts: "fct_call: incremental, 2 of 31 loads new,
    recomputing from 2026-10-26". Renders to nothing; one query, on every engine.
-#}
{% macro incremental_report(window_start) -%}
    {%- if execute and is_incremental() -%}
        {%- set name = this.identifier -%}
        {%- set query -%}
            select
                (select count(distinct load_id) from {{ ref('stg_ingestion__load_manifest') }}) as loads,
                (select count(distinct load_id) from ({{ incremental_new_loads(name) }}) as new_loads) as new_loads,
                {{ window_start }} as window_start
        {%- endset -%}
        {%- set row = run_query(query).rows[0] -%}
        {%- set start = row[2] | string -%}
        {%- if start.startswith('9999') -%}
            {%- set what = 'nothing new to recompute' -%}
        {%- elif start.startswith('0001') -%}
            {%- set what = 'recomputing everything (a load it had processed is gone from the manifest)' -%}
        {%- else -%}
            {%- set what = 'recomputing from ' ~ start -%}
        {%- endif -%}
        {%- do log(name ~ ': incremental, ' ~ row[1] ~ ' of ' ~ row[0] ~ ' loads new, ' ~ what, info=true) -%}
    {%- endif -%}
{%- endmacro %}
