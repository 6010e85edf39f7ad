with

source as (
    select * from {{ source('salesforce', 'salesforce__user') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as user_id,
        {{ clean_text('name') }} as user_name,
        {{ normalize_key('name') }} as user_name_key,
        {{ normalize_email('email') }} as email,
        coalesce(is_active, true) as is_active,
        {{ sf_id15('user_role_id') }} as user_role_id,
        {{ sf_id15('manager_id') }} as manager_user_id,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'user_id') }}
),

final as (
    select
        user_id,
        user_name,
        user_name_key,
        email,
        is_active,
        user_role_id,
        manager_user_id,
        {{ lineage_columns() }}
    from latest
)

select * from final
