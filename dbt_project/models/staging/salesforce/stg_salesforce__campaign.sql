with

source as (
    select * from {{ source('salesforce', 'salesforce__campaign') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as campaign_id,
        {{ clean_text('name') }} as campaign_name,
        {{ clean_text('type') }} as campaign_type,
        {{ clean_text('status') }} as campaign_status,
        start_date,
        end_date,
        budgeted_cost,
        actual_cost,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'campaign_id') }}
),

final as (
    select
        campaign_id,
        campaign_name,
        campaign_type,
        campaign_status,
        start_date,
        end_date,
        budgeted_cost,
        actual_cost,
        {{ lineage_columns() }}
    from latest
)

select * from final
