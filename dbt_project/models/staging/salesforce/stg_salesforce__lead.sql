with

source as (
    select * from {{ source('salesforce', 'salesforce__lead') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as lead_id,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ clean_text('company') }} as company_name,
        {{ normalize_company_name('company') }} as company_name_key,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone('phone') }} as phone_e164,
        {{ clean_text('status') }} as lead_status,
        {{ clean_text('lead_source') }} as lead_source,
        {{ sf_id15('owner_id') }} as owner_id,
        {{ utc_to_local('created_date') }} as created_at,
        coalesce(is_converted, false) as is_converted,
        converted_date as converted_on,
        {{ sf_id15('converted_account_id') }} as converted_account_id,
        {{ sf_id15('converted_contact_id') }} as converted_contact_id,
        {{ sf_id15('converted_opportunity_id') }} as converted_opportunity_id,
        coalesce(is_deleted, false) as is_deleted,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'lead_id') }}
),

final as (
    select
        lead_id,
        first_name,
        last_name,
        company_name,
        company_name_key,
        email,
        phone_e164,
        lead_status,
        lead_source,
        owner_id,
        created_at,
        is_converted,
        converted_on,
        converted_account_id,
        converted_contact_id,
        converted_opportunity_id,
        {{ lineage_columns() }}
    from latest
    where not is_deleted
)

select * from final
