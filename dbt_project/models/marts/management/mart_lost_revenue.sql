{#
    Lost revenue per month × loss reason × last stage before loss × manager × channel.
    Lost deal value (docs/metrics.md): amount of deals closed lost in the period, at their last
    known amount (fct_deal.amount, reporting currency), by loss reason (normalised list),
    by the last stage before loss, by manager and channel. The month is the local month
    of closed_at. A lost deal whose amount is unknown (a currency without a rate) counts
    in lost_deals and in deals_without_amount, not in lost_amount. A deal lost without
    any open stage before (created directly in the lost stage) has last_stage `unknown`.
#}
with

deals as (
    select * from {{ ref('fct_deal') }}
),

managers as (
    select * from {{ ref('dim_manager') }}
),

lost_deals as (
    select
        {{ month_start('deals.closed_at') }} as month,
        coalesce(deals.loss_reason, 'other') as loss_reason,
        coalesce(deals.last_stage_before_loss, 'unknown') as last_stage,
        deals.manager_id,
        deals.channel,
        deals.deal_id,
        deals.amount
    from deals
    where
        deals.status = 'lost'
        and deals.closed_at is not null
),

aggregated as (
    select
        lost_deals.month,
        lost_deals.loss_reason,
        lost_deals.last_stage,
        lost_deals.manager_id,
        lost_deals.channel,
        count(*) as lost_deals,
        coalesce(sum(lost_deals.amount), 0) as lost_amount,
        sum(case when lost_deals.amount is null then 1 else 0 end) as deals_without_amount
    from lost_deals
    group by
        lost_deals.month,
        lost_deals.loss_reason,
        lost_deals.last_stage,
        lost_deals.manager_id,
        lost_deals.channel
),

final as (
    select
        cast(aggregated.month as date) as month,
        cast(aggregated.loss_reason as {{ dbt.type_string() }}) as loss_reason,
        cast(aggregated.last_stage as {{ dbt.type_string() }}) as last_stage,
        cast(aggregated.manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(aggregated.channel as {{ dbt.type_string() }}) as channel,
        cast(aggregated.lost_deals as bigint) as lost_deals,
        cast(aggregated.lost_amount as decimal(18, 2)) as lost_amount,
        cast(aggregated.deals_without_amount as bigint) as deals_without_amount,
        {{ money_ratio('aggregated.lost_amount', 'aggregated.lost_deals - aggregated.deals_without_amount') }}
            as avg_lost_amount,
        cast(coalesce(managers.team, 'unassigned') as {{ dbt.type_string() }}) as team
    from aggregated
    left join managers
        on aggregated.manager_id = managers.manager_id
)

select * from final
