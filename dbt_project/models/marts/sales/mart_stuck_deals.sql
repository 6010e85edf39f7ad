{#
    Stuck deals (metric "Stuck deal"): one row per open deal whose age in its current
    stage exceeds the stage's threshold — the var `stuck_percentile` (0.9) percentile of
    days in stage over the completed visits of the same pipeline and stage that ended in
    the trailing var `stuck_trailing_days` (180) days, counted back from the latest stage
    change in the data. A stage without such a visit has no threshold and no stuck deal.
    The age is fct_stage_visit's days_in_stage of the open visit, as of the build (var
    `as_of`). Computed here once per build, so the dashboard reads the stuck deals and
    not every stage visit.
#}
with

visits as (
    select
        visit.deal_id,
        visit.stage,
        visit.stage_order,
        visit.entered_at,
        visit.exited_at,
        visit.days_in_stage,
        visit.is_open,
        deal.pipeline,
        deal.channel,
        deal.status,
        deal.amount,
        deal.customer_id,
        deal.manager_id
    from {{ ref('fct_stage_visit') }} as visit
    inner join {{ ref('fct_deal') }} as deal
        on visit.deal_id = deal.deal_id
),

as_of as (
    select max(coalesce(visits.exited_at, visits.entered_at)) as as_of_at
    from visits
),

thresholds as (
    select
        visits.pipeline,
        visits.stage,
        {{ percentile_cont('visits.days_in_stage', var('stuck_percentile')) }}
            as p90_days_in_stage,
        count(*) as completed_visits
    from visits
    cross join as_of
    where
        visits.exited_at is not null
        and visits.exited_at
        >= as_of.as_of_at - interval {{ var('stuck_trailing_days') }} day
    group by visits.pipeline, visits.stage
),

final as (
    select
        cast(visits.deal_id as {{ dbt.type_string() }}) as deal_id,
        cast(visits.pipeline as {{ dbt.type_string() }}) as pipeline,
        cast(visits.stage as {{ dbt.type_string() }}) as stage,
        cast(visits.stage_order as integer) as stage_order,
        cast(visits.entered_at as timestamp) as entered_at,
        cast(visits.days_in_stage as double) as age_days,
        cast(thresholds.p90_days_in_stage as double) as p90_days_in_stage,
        cast(thresholds.completed_visits as bigint) as completed_visits,
        cast(visits.amount as decimal(18, 4)) as amount,
        cast(visits.channel as {{ dbt.type_string() }}) as channel,
        cast(visits.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(visits.manager_id as {{ dbt.type_string() }}) as manager_id
    from visits
    inner join thresholds
        on
            visits.pipeline = thresholds.pipeline
            and visits.stage = thresholds.stage
    where
        visits.is_open
        and visits.status = 'open'
        and visits.days_in_stage > thresholds.p90_days_in_stage
)

select * from final
