with

source as (
    select * from {{ source('salesforce', 'salesforce__task') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as task_id,
        {{ sf_id15('who_id') }} as who_id,
        {{ sf_id15('what_id') }} as what_id,
        {{ sf_id15('owner_id') }} as owner_id,
        {{ clean_text('subject') }} as subject,
        {{ clean_text('status') }} as task_status,
        activity_date,
        {{ utc_to_local('created_date') }} as created_at,
        coalesce(is_closed, false) as is_closed,
        {{ clean_text('task_subtype') }} as task_subtype,
        call_duration_in_seconds as call_duration_seconds,
        {{ clean_text('call_type') }} as call_type,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'task_id') }}
),

final as (
    select
        task_id,
        who_id,
        what_id,
        owner_id,
        subject,
        task_status,
        activity_date,
        created_at,
        is_closed,
        task_subtype,
        call_duration_seconds,
        call_type,
        {{ lineage_columns() }}
    from latest
)

select * from final
