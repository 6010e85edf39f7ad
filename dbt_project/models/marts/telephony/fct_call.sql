{{
    config(
        materialized='incremental',
        incremental_strategy=('delete+insert' if target.type == 'duckdb' else 'insert_overwrite'),
        partition_by=(none if target.type == 'duckdb' else ['call_date']),
        on_schema_change='fail',
        pre_hook="{{ incremental_delete_hook(fct_call_stale_rows()) }}",
        post_hook="{{ incremental_record_loads_hook() }}",
    )
}}
{# the incremental window (macros/incremental.sql) reads these; declared so dbt orders the build #}
-- depends_on: {{ ref('stg_asterisk__cdr') }}
-- depends_on: {{ ref('stg_ingestion__load_manifest') }}
{#
    One row per logical call of every PBX: Asterisk calls (CDR legs merged,
    int_asterisk_calls) and cloud PBX calls (one row per call already).

    - manager_id: the call's extension -> employee through int_manager_keys (Asterisk:
      extensions.csv; cloud PBX: its employee value), the same mapping dim_manager is built
      from; null when the extension maps to no one (a queue, an unknown extension).
    - customer_id: the external number (E.164) -> int_customer_keys `phone` (a number that
      identifies exactly one resolved customer); null when unknown or shared.
    - Cloud PBX: direction and status as mapped on load; wait / talk seconds as exported;
      external number = caller of an inbound call, callee of an outbound one.
#}
with

asterisk_calls as (
    select * from {{ ref('int_asterisk_calls') }}
),

cloud_calls as (
    select * from {{ ref('stg_cloud_pbx__call') }}
),

manager_keys as (
    select * from {{ ref('int_manager_keys') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

asterisk as (
    select
        asterisk_calls.call_id,
        'asterisk' as source_system,
        asterisk_calls.source_call_id,
        asterisk_calls.started_at,
        asterisk_calls.answered_at,
        asterisk_calls.ended_at,
        asterisk_calls.direction,
        asterisk_calls.status,
        asterisk_calls.caller_number,
        asterisk_calls.callee_number,
        asterisk_calls.caller_e164,
        asterisk_calls.callee_e164,
        asterisk_calls.external_e164,
        asterisk_calls.extension,
        'asterisk_extension' as extension_key_system,
        asterisk_calls.wait_seconds,
        asterisk_calls.talk_seconds,
        asterisk_calls.legs,
        asterisk_calls.merge_rule
    from asterisk_calls
),

cloud as (
    select
        'cloud_pbx:' || cloud_calls.call_id as call_id,
        'cloud_pbx' as source_system,
        cloud_calls.call_id as source_call_id,
        cloud_calls.started_at,
        case
            when cloud_calls.call_status = 'answered'
                then {{ dbt.dateadd('second', 'coalesce(cloud_calls.wait_seconds, 0)', 'cloud_calls.started_at') }}
        end as answered_at,
        {{ dbt.dateadd(
            'second',
            'coalesce(cloud_calls.wait_seconds, 0) + coalesce(cloud_calls.talk_seconds, 0)',
            'cloud_calls.started_at'
        ) }} as ended_at,
        cloud_calls.direction,
        cloud_calls.call_status as status,
        cloud_calls.caller as caller_number,
        cloud_calls.callee as callee_number,
        cloud_calls.caller_e164,
        cloud_calls.callee_e164,
        case cloud_calls.direction
            when 'inbound' then cloud_calls.caller_e164
            when 'outbound' then cloud_calls.callee_e164
        end as external_e164,
        cloud_calls.employee_extension as extension,
        'cloud_pbx_employee' as extension_key_system,
        cloud_calls.wait_seconds,
        case when cloud_calls.call_status = 'answered' then coalesce(cloud_calls.talk_seconds, 0) else 0 end
            as talk_seconds,
        1 as legs,
        'one_row_per_call' as merge_rule
    from cloud_calls
    where cloud_calls.call_id is not null
),

unioned as (
    select * from asterisk
    union all
    select * from cloud
),

final as (
    select
        cast(unioned.call_id as {{ dbt.type_string() }}) as call_id,
        cast(unioned.started_at as timestamp) as started_at,
        cast(unioned.direction as {{ dbt.type_string() }}) as direction,
        cast(unioned.caller_e164 as {{ dbt.type_string() }}) as caller_e164,
        cast(unioned.callee_e164 as {{ dbt.type_string() }}) as callee_e164,
        cast(manager_keys.manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(customer_keys.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(unioned.status as {{ dbt.type_string() }}) as status,
        cast(unioned.wait_seconds as {{ dbt.type_bigint() }}) as wait_seconds,
        cast(unioned.talk_seconds as {{ dbt.type_bigint() }}) as talk_seconds,
        cast(unioned.source_system as {{ dbt.type_string() }}) as source_system,
        cast(unioned.source_call_id as {{ dbt.type_string() }}) as source_call_id,
        cast(unioned.legs as integer) as legs,
        cast(unioned.merge_rule as {{ dbt.type_string() }}) as merge_rule,
        cast(cast(unioned.started_at as date) as date) as call_date,
        cast(unioned.answered_at as timestamp) as answered_at,
        cast(unioned.ended_at as timestamp) as ended_at,
        cast(unioned.status = 'answered' as boolean) as is_answered,
        cast(unioned.caller_number as {{ dbt.type_string() }}) as caller_number,
        cast(unioned.callee_number as {{ dbt.type_string() }}) as callee_number,
        cast(unioned.external_e164 as {{ dbt.type_string() }}) as external_e164,
        cast(unioned.extension as {{ dbt.type_string() }}) as extension
    from unioned
    left join manager_keys
        on
            unioned.extension_key_system = manager_keys.source_system
            and unioned.extension = manager_keys.source_key
    left join customer_keys
        on
            customer_keys.source_system = 'phone'
            and unioned.external_e164 = customer_keys.source_key
)

select * from final
{%- if is_incremental() %}
{{- incremental_report(call_window_start()) }}
-- incremental: the window of late or new files, and (DuckDB) every call not stored any more
where final.call_date >= {{ call_window_start() }}
    {%- if target.type == 'duckdb' %}
    or not exists (select 1 from {{ this }} as stored where stored.call_id = final.call_id)
    {%- endif %}
{%- endif %}
