{# The org's own stage configuration, when OpportunityStage.csv is exported. #}
with

source as (
    select * from {{ source('salesforce', 'salesforce__opportunity_stage') }}
),

renamed as (
    select
        {{ clean_text('master_label') }} as stage_name,
        {{ normalize_key('master_label') }} as stage_key,
        sort_order,
        default_probability / 100.0 as default_probability,
        coalesce(is_closed, false) as is_closed,
        coalesce(is_won, false) as is_won,
        coalesce(is_active, true) as is_active,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'stage_key') }}
),

final as (
    select
        stage_name,
        stage_key,
        sort_order,
        default_probability,
        is_closed,
        is_won,
        is_active,
        {{ lineage_columns() }}
    from latest
)

select * from final
