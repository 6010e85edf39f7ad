{#
    The stage configuration in force: the seed `pipeline_stages`, except that the
    Salesforce org's own OpportunityStage export, when it has rows, replaces the seeded
    `salesforce` pipeline. `stage_key` / `stage_code_key` are the matching keys
    (lower case, ё = е) that deals' raw stage names are looked up by.
#}
with

seeded_stages as (
    select * from {{ ref('pipeline_stages') }}
),

exported_stages as (
    select * from {{ ref('stg_salesforce__opportunity_stage') }}
),

salesforce_from_export as (
    select
        'salesforce' as pipeline,
        exported_stages.stage_name as stage,
        cast(null as {{ dbt.type_string() }}) as stage_code,
        exported_stages.sort_order as stage_order,
        exported_stages.default_probability as probability,
        exported_stages.is_closed,
        exported_stages.is_won,
        'salesforce_opportunity_stage' as config_source
    from exported_stages
),

from_seed as (
    select
        seeded_stages.pipeline,
        seeded_stages.stage,
        seeded_stages.stage_code,
        seeded_stages.stage_order,
        seeded_stages.probability,
        seeded_stages.is_closed,
        seeded_stages.is_won,
        'seed' as config_source
    from seeded_stages
    where not (
        seeded_stages.pipeline = 'salesforce'
        and exists (select 1 from salesforce_from_export)
    )
),

unioned as (
    select * from from_seed
    union all
    select * from salesforce_from_export
),

final as (
    select
        pipeline,
        stage,
        {{ normalize_key('stage') }} as stage_key,
        {{ normalize_key('stage_code') }} as stage_code_key,
        cast(stage_order as integer) as stage_order,
        cast(probability as double) as probability,
        coalesce(is_closed, false) as is_closed,
        coalesce(is_won, false) as is_won,
        coalesce(is_closed, false) and not coalesce(is_won, false) as is_lost,
        config_source
    from unioned
)

select * from final
