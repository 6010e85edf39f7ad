with

source as (
    select * from {{ source('salesforce', 'salesforce__account') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as account_id,
        {{ clean_text('name') }} as account_name,
        {{ normalize_company_name('name') }} as account_name_key,
        {{ clean_text('type') }} as account_type,
        {{ clean_text('industry') }} as industry,
        {{ clean_text('phone') }} as phone_raw,
        {{ normalize_phone('phone') }} as phone_e164,
        {{ clean_text('website') }} as website,
        {{ clean_text('billing_city') }} as billing_city,
        {{ sf_id15('owner_id') }} as owner_id,
        {{ utc_to_local('created_date') }} as created_at,
        {{ digits_only('inn') }} as inn,
        {{ inn_is_valid(digits_only('inn')) }} as inn_is_valid,
        coalesce(is_deleted, false) as is_deleted,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'account_id') }}
),

final as (
    select
        account_id,
        account_name,
        account_name_key,
        account_type,
        industry,
        phone_raw,
        phone_e164,
        website,
        billing_city,
        owner_id,
        created_at,
        inn,
        inn_is_valid,
        {{ lineage_columns() }}
    from latest
    where not is_deleted
)

select * from final
