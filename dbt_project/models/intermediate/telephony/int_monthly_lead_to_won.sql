{#
    Company-wide lead-to-won rate and average won amount per calendar month: the two
    factors that turn a lost opportunity (a missed call nobody called back) into an
    estimated value in mart_missed_calls.

    - leads: leads created in the month (int_leads: Salesforce and Bitrix leads);
    - won_deals / won_amount: deals won in the month (fct_deal status `won`, by closed_at),
      amounts in the reporting currency;
    - lead_to_won_rate = won_deals / leads, capped at 1 (deals that came without a lead
      record — Bitrix deals, direct opportunities — could push it above 1, which is not a
      probability); null when the month has no lead;
    - avg_won_amount = won_amount / won deals with an amount; null when none.
#}
with

leads as (
    select * from {{ ref('int_leads') }}
),

deals as (
    select * from {{ ref('fct_deal') }}
),

monthly_leads as (
    select
        leads.created_month as month,
        count(*) as leads
    from leads
    where leads.created_month is not null
    group by leads.created_month
),

monthly_won as (
    select
        {{ month_start('deals.closed_at') }} as month,
        count(*) as won_deals,
        sum(deals.amount) as won_amount,
        count(deals.amount) as won_deals_with_amount
    from deals
    where
        deals.status = 'won'
        and deals.closed_at is not null
    group by {{ month_start('deals.closed_at') }}
),

months as (
    select monthly_leads.month from monthly_leads
    union
    select monthly_won.month from monthly_won
),

final as (
    select
        months.month,
        coalesce(monthly_leads.leads, 0) as leads,
        coalesce(monthly_won.won_deals, 0) as won_deals,
        coalesce(monthly_won.won_amount, 0) as won_amount,
        case
            when coalesce(monthly_leads.leads, 0) = 0 then null
            else least(1.0, {{ ratio('coalesce(monthly_won.won_deals, 0)', 'monthly_leads.leads') }})
        end as lead_to_won_rate,
        {{ money_ratio('monthly_won.won_amount', 'monthly_won.won_deals_with_amount') }} as avg_won_amount
    from months
    left join monthly_leads
        on months.month = monthly_leads.month
    left join monthly_won
        on months.month = monthly_won.month
)

select * from final
