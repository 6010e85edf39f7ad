{#
    One row per OpportunityHistory record (a change of stage, amount or close date):
    consecutive rows may repeat a stage; collapsing them into visits is the job of
    int_deal_stage_changes, not of staging.
#}
with

source as (
    select * from {{ source('salesforce', 'salesforce__opportunity_history') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as history_id,
        {{ sf_id15('opportunity_id') }} as opportunity_id,
        {{ clean_text('stage_name') }} as stage_name,
        amount,
        probability / 100.0 as probability,
        close_date,
        {{ clean_text('forecast_category') }} as forecast_category,
        {{ utc_to_local('created_date') }} as created_at,
        {{ sf_id15('created_by_id') }} as created_by_id,
        coalesce(is_deleted, false) as is_deleted,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'history_id') }}
),

final as (
    select
        history_id,
        opportunity_id,
        stage_name,
        amount,
        probability,
        close_date,
        forecast_category,
        created_at,
        created_by_id,
        {{ lineage_columns() }}
    from latest
    where not is_deleted
)

select * from final
