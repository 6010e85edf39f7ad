with

source as (
    select * from {{ source('salesforce', 'salesforce__contact') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as contact_id,
        {{ sf_id15('account_id') }} as account_id,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone') }} as phone_e164,
        {{ normalize_phone('mobile_phone') }} as mobile_phone_e164,
        {{ clean_text('lead_source') }} as lead_source,
        {{ sf_id15('owner_id') }} as owner_id,
        {{ utc_to_local('created_date') }} as created_at,
        coalesce(is_deleted, false) as is_deleted,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'contact_id') }}
),

final as (
    select
        contact_id,
        account_id,
        first_name,
        last_name,
        email,
        phone_e164,
        mobile_phone_e164,
        lead_source,
        owner_id,
        created_at,
        {{ lineage_columns() }}
    from latest
    where not is_deleted
)

select * from final
