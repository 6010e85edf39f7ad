{#
    Channel ROI per month × channel × attribution model (`first_touch`, `last_touch`,
    `linear`: side by side, never mixed — every month × channel has one row per model).

    Not attributed (the same in the three model rows of a month × channel):
    - spend: the channel's marketing spend in the month (int_marketing_spend, 1C expense
      register); 0 when none is recorded;
    - leads / qualified_leads: lead records (Salesforce and Bitrix leads) created in the
      month with that channel (int_attribution_touches);
    - deals: deals created in the month with that channel (fct_deal.channel).
    Attributed (int_attribution_credits; the month is the month the deal was won):
    - won_deals: Σ credit of the deals won in the month (fractional under `linear`);
    - attributed_revenue: Σ credit × deal revenue net of VAT;
    - attributed_cogs: Σ credit × the deal's COGS (int_cogs: Σ quantity × unit cost valid
      on the sale date of its product lines; 0 for a deal without lines or costs, whose
      revenue is also reported in attributed_revenue_without_cogs);
    - attributed_gross_margin = attributed_revenue − attributed_cogs;
    - new_customers: Σ credit of the customers' first won deals.
    Ratios: cost_per_lead = spend / leads; cac = spend / new_customers; romi =
    (attributed_gross_margin − spend) / spend; lead_to_won_rate = won_deals / leads; each
    null when its denominator is 0.
#}
with

spend as (
    select * from {{ ref('int_marketing_spend') }}
),

touches as (
    select * from {{ ref('int_attribution_touches') }}
),

credits as (
    select * from {{ ref('int_attribution_credits') }}
),

deals as (
    select * from {{ ref('fct_deal') }}
),

cogs as (
    select * from {{ ref('int_cogs') }}
),

models as (
    {{ attribution_model_rows() }}
),

-- Not attributed ------------------------------------------------------------------------

monthly_spend as (
    {{ monthly_channel_spend('spend') }}
),

monthly_leads as (
    select
        {{ month_start('touches.touch_at') }} as month,
        touches.channel,
        count(*) as leads,
        sum(case when touches.is_qualified_lead then 1 else 0 end) as qualified_leads
    from touches
    where
        touches.is_lead
        and touches.touch_at is not null
    group by
        {{ month_start('touches.touch_at') }},
        touches.channel
),

monthly_deals as (
    select
        {{ month_start('deals.created_at') }} as month,
        deals.channel,
        count(*) as deals
    from deals
    where deals.created_at is not null
    group by
        {{ month_start('deals.created_at') }},
        deals.channel
),

-- Attributed ----------------------------------------------------------------------------

deal_cogs as (
    select
        cogs.deal_id,
        sum(cogs.cogs) as cogs,
        min(case when cogs.has_cost then 1 else 0 end) = 1 as is_fully_costed
    from cogs
    group by cogs.deal_id
),

credited_amounts as (
    select
        credits.won_month as month,
        credits.channel,
        credits.attribution_model,
        credits.credit,
        -- each share fixed to 6 decimals, then summed as decimals: a sum of doubles
        -- depends on the order rows arrive in, and rounding it to the cent could differ by
        -- 0.01 between two builds of the same data
        cast(credits.credit * coalesce(credits.revenue_net, 0) as decimal(38, 6)) as attributed_revenue,
        cast(credits.credit * coalesce(deal_cogs.cogs, 0) as decimal(38, 6)) as attributed_cogs,
        case
            when deal_cogs.is_fully_costed then cast(0 as decimal(38, 6))
            else cast(credits.credit * coalesce(credits.revenue_net, 0) as decimal(38, 6))
        end as attributed_revenue_without_cogs,
        case when credits.is_first_won_deal then credits.credit else 0 end as new_customer_credit
    from credits
    left join deal_cogs
        on credits.deal_id = deal_cogs.deal_id
),

attributed as (
    select
        month,
        channel,
        attribution_model,
        sum(credit) as won_deals,
        sum(attributed_revenue) as attributed_revenue,
        sum(attributed_cogs) as attributed_cogs,
        sum(attributed_revenue_without_cogs) as attributed_revenue_without_cogs,
        sum(new_customer_credit) as new_customers
    from credited_amounts
    group by
        month,
        channel,
        attribution_model
),

-- Spine: month × channel × model --------------------------------------------------------

month_channels as (
    select
        month,
        channel
    from monthly_spend
    union
    select
        month,
        channel
    from monthly_leads
    union
    select
        month,
        channel
    from monthly_deals
    union
    select
        month,
        channel
    from attributed
),

spine as (
    select
        month_channels.month,
        month_channels.channel,
        models.attribution_model
    from month_channels
    cross join models
),

joined as (
    select
        spine.month,
        spine.channel,
        spine.attribution_model,
        coalesce(monthly_spend.spend, 0) as spend,
        coalesce(monthly_leads.leads, 0) as leads,
        coalesce(monthly_leads.qualified_leads, 0) as qualified_leads,
        coalesce(monthly_deals.deals, 0) as deals,
        coalesce(attributed.won_deals, 0) as won_deals,
        -- amounts rounded to kopecks first, so that the ratios agree with the columns shown
        cast(round(coalesce(attributed.attributed_revenue, 0), 2) as decimal(18, 2)) as attributed_revenue,
        cast(round(coalesce(attributed.attributed_cogs, 0), 2) as decimal(18, 2)) as attributed_cogs,
        cast(round(coalesce(attributed.attributed_revenue_without_cogs, 0), 2) as decimal(18, 2))
            as attributed_revenue_without_cogs,
        coalesce(attributed.new_customers, 0) as new_customers
    from spine
    left join monthly_spend
        on
            spine.month = monthly_spend.month
            and spine.channel = monthly_spend.channel
    left join monthly_leads
        on
            spine.month = monthly_leads.month
            and spine.channel = monthly_leads.channel
    left join monthly_deals
        on
            spine.month = monthly_deals.month
            and spine.channel = monthly_deals.channel
    left join attributed
        on
            spine.month = attributed.month
            and spine.channel = attributed.channel
            and spine.attribution_model = attributed.attribution_model
),

final as (
    select
        cast(month as date) as month,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(attribution_model as {{ dbt.type_string() }}) as attribution_model,
        cast(spend as decimal(18, 2)) as spend,
        cast(leads as bigint) as leads,
        cast(won_deals as double) as won_deals,
        cast(attributed_revenue as decimal(18, 2)) as attributed_revenue,
        cast(attributed_revenue - attributed_cogs as decimal(18, 2)) as attributed_gross_margin,
        {{ money_ratio('spend', 'leads') }} as cost_per_lead,
        {{ money_ratio('spend', 'new_customers') }} as cac,
        cast({{ ratio('attributed_revenue - attributed_cogs - spend', 'spend') }} as double) as romi,
        cast(qualified_leads as bigint) as qualified_leads,
        cast(deals as bigint) as deals,
        cast(new_customers as double) as new_customers,
        cast(attributed_cogs as decimal(18, 2)) as attributed_cogs,
        cast(attributed_revenue_without_cogs as decimal(18, 2)) as attributed_revenue_without_cogs,
        cast(won_deals / nullif(leads, 0) as double) as lead_to_won_rate
    from joined
)

select * from final
