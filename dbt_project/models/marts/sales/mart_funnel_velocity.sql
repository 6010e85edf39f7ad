{#
    Month × pipeline × stage (month of the stage entry, local time).
    - deals_entered: distinct deals that entered the stage in the month.
    - deals_converted: of those, the deals that after (their first entry of the month into)
      the stage entered a stage with a higher stage_order that is not a lost stage, or
      that are won. Entering "Closed Lost" is not a conversion even though it is last in
      the order. Stages outside the configuration (stage_order null) convert only by
      winning.
    - conversion_rate = deals_converted / deals_entered.
    - avg / median / p90 days_in_stage over COMPLETED visits that entered the stage in
      the month (open visits are excluded, never averaged in).
    - Visits whose entry was not observed (is_entry_observed = false: a Bitrix deal
      already in the stage when exports began) are neither entries nor durations.
#}
with

visits as (
    select * from {{ ref('fct_stage_visit') }}
),

deals as (
    select * from {{ ref('fct_deal') }}
),

-- a visit whose start was not observed is not a stage entry (and its duration is only
-- a lower bound): left out of entries and durations, kept as a later-stage target
visit_months as (
    select
        visits.*,
        {{ month_start('visits.entered_at') }} as month
    from visits
    where visits.is_entry_observed
),

entries as (
    select
        visit_months.month,
        visit_months.pipeline,
        visit_months.stage,
        visit_months.deal_id,
        max(visit_months.stage_order) as stage_order,
        min(visit_months.entered_at) as first_entered_at
    from visit_months
    group by
        visit_months.month,
        visit_months.pipeline,
        visit_months.stage,
        visit_months.deal_id
),

conversions as (
    select
        entries.month,
        entries.pipeline,
        entries.stage,
        entries.deal_id,
        entries.stage_order,
        max(
            case
                when deals.status = 'won' then 1
                when later_visits.deal_id is not null then 1
                else 0
            end
        ) as is_converted
    from entries
    left join deals
        on entries.deal_id = deals.deal_id
    left join visits as later_visits
        on
            entries.deal_id = later_visits.deal_id
            and entries.first_entered_at < later_visits.entered_at
            and entries.stage_order < later_visits.stage_order
            and not later_visits.is_lost_stage
    group by
        entries.month,
        entries.pipeline,
        entries.stage,
        entries.deal_id,
        entries.stage_order
),

conversion_totals as (
    select
        month,
        pipeline,
        stage,
        max(stage_order) as stage_order,
        count(*) as deals_entered,
        sum(is_converted) as deals_converted
    from conversions
    group by
        month,
        pipeline,
        stage
),

durations as (
    select
        visit_months.month,
        visit_months.pipeline,
        visit_months.stage,
        avg(visit_months.days_in_stage) as avg_days_in_stage,
        {{ percentile_cont('visit_months.days_in_stage', 0.5) }} as median_days_in_stage,
        {{ percentile_cont('visit_months.days_in_stage', 0.9) }} as p90_days_in_stage,
        count(*) as completed_visits
    from visit_months
    where visit_months.exited_at is not null
    group by
        visit_months.month,
        visit_months.pipeline,
        visit_months.stage
),

final as (
    select
        cast(conversion_totals.month as date) as month,
        cast(conversion_totals.pipeline as {{ dbt.type_string() }}) as pipeline,
        cast(conversion_totals.stage as {{ dbt.type_string() }}) as stage,
        cast(conversion_totals.stage_order as integer) as stage_order,
        cast(conversion_totals.deals_entered as bigint) as deals_entered,
        cast(conversion_totals.deals_converted as bigint) as deals_converted,
        cast(
            {{ ratio('conversion_totals.deals_converted', 'conversion_totals.deals_entered') }} as double
        ) as conversion_rate,
        cast(durations.avg_days_in_stage as double) as avg_days_in_stage,
        cast(durations.median_days_in_stage as double) as median_days_in_stage,
        cast(durations.p90_days_in_stage as double) as p90_days_in_stage,
        cast(coalesce(durations.completed_visits, 0) as bigint) as completed_visits
    from conversion_totals
    left join durations
        on
            conversion_totals.month = durations.month
            and conversion_totals.pipeline = durations.pipeline
            and conversion_totals.stage = durations.stage
)

select * from final
