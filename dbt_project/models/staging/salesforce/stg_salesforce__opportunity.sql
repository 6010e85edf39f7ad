{#
    One row per opportunity: the latest exported version (by LastModifiedDate, then load
    time, then line), deleted opportunities removed. The same deal exported with a changed
    amount keeps the latest amount.
#}
with

source as (
    select * from {{ source('salesforce', 'salesforce__opportunity') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as opportunity_id,
        {{ sf_id15('account_id') }} as account_id,
        {{ clean_text('name') }} as opportunity_name,
        {{ clean_text('stage_name') }} as stage_name,
        amount,
        probability / 100.0 as probability,
        close_date,
        {{ clean_text('type') }} as opportunity_type,
        {{ clean_text('lead_source') }} as lead_source,
        {{ sf_id15('campaign_id') }} as campaign_id,
        coalesce(is_closed, false) as is_closed,
        coalesce(is_won, false) as is_won,
        {{ clean_text('forecast_category') }} as forecast_category,
        {{ sf_id15('owner_id') }} as owner_id,
        {{ utc_to_local('created_date') }} as created_at,
        {{ utc_to_local('last_modified_date') }} as last_modified_at,
        {{ normalize_currency('currency_iso_code') }} as currency_iso_code,
        {{ clean_text('loss_reason') }} as loss_reason,
        coalesce(is_deleted, false) as is_deleted,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'opportunity_id', newest_first='last_modified_at') }}
),

final as (
    select
        opportunity_id,
        account_id,
        opportunity_name,
        stage_name,
        amount,
        probability,
        close_date,
        opportunity_type,
        lead_source,
        campaign_id,
        is_closed,
        is_won,
        forecast_category,
        owner_id,
        created_at,
        last_modified_at,
        currency_iso_code,
        loss_reason,
        {{ lineage_columns() }}
    from latest
    where not is_deleted
)

select * from final
