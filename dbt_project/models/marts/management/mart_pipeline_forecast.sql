{#
    Plan attainment and forecast per quarter × manager, as of var `as_of` (default: the
    build's local now). docs/metrics.md: quarterly plan per manager/team (the plan file) vs won
    revenue to date; weighted pipeline (amount × stage probability) of deals expected to
    close this quarter; pipeline coverage = weighted pipeline / remaining plan.

    - won_to_date: amount of the manager's deals won in the quarter (closed_at), up to as_of.
    - weighted pipeline: OPEN deals × the configured probability of their current stage
      (fct_deal.stage_probability; 0 for a stage outside the configuration), each deal's
      weighted amount rounded to the cent (money_at_rate: an exact decimal product, so the
      sums are exact and equal on every engine; summing double products was not: the
      order of a double sum differs between engines and moved a total by a cent), counted in
      the quarter of their expected close date: the CRM's close date (Salesforce
      CloseDate) or, for deals without one (Bitrix), created date + the median sales cycle
      of the pipeline's won deals (all pipelines' median when the pipeline has none). An
      open deal whose expected close date is before the as-of date has slipped: it is
      not pipeline of any quarter; it is reported in overdue_* on the current quarter's row.
      Quarters that ended before the as-of date have no pipeline (null).
    - coverage = weighted_pipeline / (plan_amount − won_to_date), only when a plan exists,
      the remaining plan is > 0 and the quarter has not ended; coverage_status says why
      it is null otherwise (`no_plan`, `plan_met`, `quarter_closed`).
    - team figures: team plans are reported at team level (sales_plan `team` rows, never
      split among members); team_* repeat on every member row of the quarter. Teams are
      today's (dim_manager.team).
    Rows: every manager with a plan, a won deal, pipeline or overdue deals in the quarter,
    and every active member of a team with a team plan for the quarter. Deals without a
    manager are left out.
#}
with

deals as (
    select * from {{ ref('fct_deal') }}
),

plan as (
    select * from {{ ref('int_sales_plan') }}
),

managers as (
    select * from {{ ref('dim_manager') }}
),

as_of as (
    select
        cast({{ as_of_timestamp() }} as date) as as_of_date,
        cast({{ dbt.date_trunc('quarter', as_of_timestamp()) }} as date) as current_quarter
),

-- Expected close date of open deals -----------------------------------------------------

pipeline_cycles as (
    select
        deals.pipeline,
        {{ percentile_cont('deals.sales_cycle_days', 0.5) }} as median_cycle_days
    from deals
    where
        deals.status = 'won'
        and deals.sales_cycle_days is not null
    group by deals.pipeline
),

overall_cycle as (
    select {{ percentile_cont('deals.sales_cycle_days', 0.5) }} as median_cycle_days
    from deals
    where
        deals.status = 'won'
        and deals.sales_cycle_days is not null
),

open_deals as (
    select
        deals.deal_id,
        deals.manager_id,
        {{ money_at_rate('deals.amount', 'coalesce(deals.stage_probability, 0)') }} as weighted_amount,
        coalesce(
            deals.expected_close_date,
            cast({{ dbt.dateadd(
                'day',
                'cast(round(coalesce(pipeline_cycles.median_cycle_days, overall_cycle.median_cycle_days, 0)) as integer)',
                'cast(deals.created_at as date)'
            ) }} as date)
        ) as expected_close_on
    from deals
    left join pipeline_cycles
        on deals.pipeline = pipeline_cycles.pipeline
    cross join overall_cycle
    where
        deals.status = 'open'
        and deals.manager_id is not null
        and deals.amount is not null
),

open_classified as (
    select
        open_deals.*,
        open_deals.expected_close_on < as_of.as_of_date as is_overdue,
        case
            when open_deals.expected_close_on < as_of.as_of_date then as_of.current_quarter
            else cast({{ dbt.date_trunc('quarter', 'open_deals.expected_close_on') }} as date)
        end as quarter
    from open_deals
    cross join as_of
),

pipeline_by_quarter as (
    select
        quarter,
        manager_id,
        sum(case when not is_overdue then 1 else 0 end) as open_deals,
        sum(case when not is_overdue then weighted_amount else 0 end) as weighted_pipeline,
        sum(case when is_overdue then 1 else 0 end) as overdue_open_deals,
        sum(case when is_overdue then weighted_amount else 0 end) as overdue_weighted_pipeline
    from open_classified
    group by
        quarter,
        manager_id
),

-- Won to date ---------------------------------------------------------------------------

won_by_quarter as (
    select
        cast({{ dbt.date_trunc('quarter', 'deals.closed_at') }} as date) as quarter,
        deals.manager_id,
        count(*) as won_deals,
        coalesce(sum(deals.amount), 0) as won_to_date
    from deals
    cross join as_of
    where
        deals.status = 'won'
        and deals.manager_id is not null
        and deals.closed_at is not null
        and cast(deals.closed_at as date) <= as_of.as_of_date
    group by
        cast({{ dbt.date_trunc('quarter', 'deals.closed_at') }} as date),
        deals.manager_id
),

-- Plans ---------------------------------------------------------------------------------

manager_plans as (
    select
        plan.quarter_start as quarter,
        plan.manager_id,
        sum(plan.plan_amount) as plan_amount
    from plan
    where
        plan.plan_level = 'manager'
        and plan.is_matched
    group by
        plan.quarter_start,
        plan.manager_id
),

team_plans as (
    select
        plan.quarter_start as quarter,
        plan.team,
        sum(plan.plan_amount) as plan_amount
    from plan
    where
        plan.plan_level = 'team'
        and plan.is_matched
    group by
        plan.quarter_start,
        plan.team
),

team_plan_members as (
    select
        team_plans.quarter,
        managers.manager_id
    from team_plans
    inner join managers
        on team_plans.team = managers.team
    where coalesce(managers.is_active, true)
),

-- Spine: quarter × manager --------------------------------------------------------------

spine as (
    select
        quarter,
        manager_id
    from manager_plans
    union
    select
        quarter,
        manager_id
    from team_plan_members
    union
    select
        quarter,
        manager_id
    from won_by_quarter
    union
    select
        quarter,
        manager_id
    from pipeline_by_quarter
),

joined as (
    select
        spine.quarter,
        spine.manager_id,
        coalesce(managers.team, 'unassigned') as team,
        manager_plans.plan_amount,
        coalesce(won_by_quarter.won_deals, 0) as won_deals,
        coalesce(won_by_quarter.won_to_date, 0) as won_to_date,
        coalesce(pipeline_by_quarter.open_deals, 0) as open_deals,
        coalesce(pipeline_by_quarter.weighted_pipeline, 0) as weighted_pipeline,
        coalesce(pipeline_by_quarter.overdue_open_deals, 0) as overdue_open_deals,
        coalesce(pipeline_by_quarter.overdue_weighted_pipeline, 0) as overdue_weighted_pipeline,
        {{ dbt.dateadd('month', 3, 'spine.quarter') }}
        <= {{ date_to_timestamp('as_of.as_of_date') }} as is_quarter_closed,
        spine.quarter = as_of.current_quarter as is_current_quarter,
        as_of.as_of_date
    from spine
    cross join as_of
    left join managers
        on spine.manager_id = managers.manager_id
    left join manager_plans
        on
            spine.quarter = manager_plans.quarter
            and spine.manager_id = manager_plans.manager_id
    left join won_by_quarter
        on
            spine.quarter = won_by_quarter.quarter
            and spine.manager_id = won_by_quarter.manager_id
    left join pipeline_by_quarter
        on
            spine.quarter = pipeline_by_quarter.quarter
            and spine.manager_id = pipeline_by_quarter.manager_id
),

with_team as (
    select
        joined.*,
        coalesce(
            team_plans.plan_amount,
            sum(joined.plan_amount) over (partition by joined.quarter, joined.team)
        ) as team_plan_amount,
        sum(joined.won_to_date) over (partition by joined.quarter, joined.team) as team_won_to_date,
        sum(joined.weighted_pipeline) over (partition by joined.quarter, joined.team) as team_weighted_pipeline
    from joined
    left join team_plans
        on
            joined.quarter = team_plans.quarter
            and joined.team = team_plans.team
),

final as (
    select
        cast(quarter as date) as quarter,
        cast(
            cast(extract(year from quarter) as {{ dbt.type_string() }})
            || '-Q' || cast(extract(quarter from quarter) as {{ dbt.type_string() }})
            as {{ dbt.type_string() }}
        ) as quarter_label,
        cast(manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(team as {{ dbt.type_string() }}) as team,
        cast(plan_amount as decimal(18, 2)) as plan_amount,
        cast(won_deals as bigint) as won_deals,
        cast(won_to_date as decimal(18, 2)) as won_to_date,
        cast(plan_amount - won_to_date as decimal(18, 2)) as remaining_plan,
        cast({{ ratio('won_to_date', 'plan_amount') }} as double) as attainment,
        cast(case when not is_quarter_closed then open_deals end as bigint) as open_deals,
        cast(case when not is_quarter_closed then weighted_pipeline end as decimal(18, 2)) as weighted_pipeline,
        cast(
            case
                when
                    plan_amount is not null
                    and not is_quarter_closed
                    and plan_amount - won_to_date > 0
                    then {{ ratio('weighted_pipeline', 'plan_amount - won_to_date') }}
            end as double
        ) as coverage,
        cast(
            case
                when plan_amount is null then 'no_plan'
                when is_quarter_closed then 'quarter_closed'
                when plan_amount - won_to_date <= 0 then 'plan_met'
                else 'ok'
            end as {{ dbt.type_string() }}
        ) as coverage_status,
        cast(overdue_open_deals as bigint) as overdue_open_deals,
        cast(overdue_weighted_pipeline as decimal(18, 2)) as overdue_weighted_pipeline,
        cast(team_plan_amount as decimal(18, 2)) as team_plan_amount,
        cast(team_won_to_date as decimal(18, 2)) as team_won_to_date,
        cast(case when not is_quarter_closed then team_weighted_pipeline end as decimal(18, 2))
            as team_weighted_pipeline,
        cast(
            case
                when
                    team_plan_amount is not null
                    and not is_quarter_closed
                    and team_plan_amount - team_won_to_date > 0
                    then {{ ratio('team_weighted_pipeline', 'team_plan_amount - team_won_to_date') }}
            end as double
        ) as team_coverage,
        cast(is_current_quarter as boolean) as is_current_quarter,
        cast(is_quarter_closed as boolean) as is_quarter_closed,
        cast(as_of_date as date) as as_of_date
    from with_team
)

select * from final
