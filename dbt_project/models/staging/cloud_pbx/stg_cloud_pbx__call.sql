{# One row per cloud PBX call; direction and status were mapped to canonical values on load. #}
with

source as (
    select * from {{ source('cloud_pbx', 'cloud_pbx__call') }}
),

renamed as (
    select
        {{ clean_text('call_id') }} as call_id,
        started_at,
        lower({{ clean_text('direction') }}) as direction,
        {{ clean_text('caller') }} as caller,
        {{ normalize_phone('caller') }} as caller_e164,
        {{ clean_text('callee') }} as callee,
        {{ normalize_phone('callee') }} as callee_e164,
        {{ clean_text('employee') }} as employee_extension,
        lower({{ clean_text('status') }}) as call_status,
        wait_seconds,
        talk_seconds,
        {{ clean_text('recording_url') }} as recording_url,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'call_id') }}
),

final as (
    select
        call_id,
        started_at,
        direction,
        caller,
        caller_e164,
        callee,
        callee_e164,
        employee_extension,
        call_status,
        wait_seconds,
        talk_seconds,
        recording_url,
        {{ lineage_columns() }}
    from latest
)

select * from final
