{#
    Customer profitability per customer × calendar year (docs/metrics.md, "Customer
    profitability"); the current year runs to the as-of date (var as_of, default today).

    - revenue: net-of-VAT amount of invoices issued to the customer in the year;
    - cogs: quantity × unit cost (valid on the sale date) of the products sold in the year
      (int_cogs, Salesforce deal lines);
    - cost_to_serve = talk minutes with the customer × var cost_per_talk_minute + handled
      tasks × var cost_per_task;
    - contribution_margin = revenue − cogs − cost_to_serve;
    - acquisition_cost: on the row of the acquisition year only — the spend of the
      customer's acquisition channel (dim_customer.acquisition_channel) in the acquisition
      month (month of dim_customer.first_won_at) / the customers that channel acquired
      that month; 0 when the channel had no spend; null in other years;
    - clv_5y = Σ_{t=1..5} m · r^(t−1) / (1 + d)^t (macro clv_npv), m = contribution margin
      of the 12 months ending on the reference date (31 December, or the as-of date in the
      current year), r = retention rate of the customer's segment (dim_customer.segment):
      share of the customers active (revenue > 0) in the previous year that are active
      again in this year (all segments together when the segment had no active customer
      last year; null — and clv_5y null — when nobody was), d = var clv_discount_rate;
    - rfm_segment `R<r>F<f>M<m>`: quintile scores 1–5 (macro quintile_score, 5 = best)
      among all customers who bought (an invoice) on or before the reference date:
      recency = days from the last invoice to the reference date, frequency = invoices and
      monetary = revenue in the 12 months ending on the reference date; null for a
      customer who never bought. rfm_group names the segment (see the YAML);
    - abc_class: customers ranked by revenue of the year (descending); A while the revenue
      of the customers ranked above makes less than 80 % of the year's revenue (so A are
      the top customers making 80 %), B while it makes less than 95 % (the next 15 %), C
      the rest, including customers without revenue in the year.
    Rows: every resolved customer with an event in the year (invoice, COGS, answered
    call, handled task) or acquired in the year.
#}
with

events as (
    select * from {{ ref('int_customer_value_events') }}
),

customers as (
    select * from {{ ref('dim_customer') }}
),

spend as (
    select * from {{ ref('int_marketing_spend') }}
),

as_of as (
    select cast({{ as_of_timestamp() }} as date) as as_of_date
),

dated_events as (
    select
        events.*,
        cast(extract(year from events.event_on) as integer) as year
    from events
    cross join as_of
    where events.event_on <= as_of.as_of_date
),

-- Acquisition -------------------------------------------------------------------------

acquisitions as (
    select
        customers.customer_id,
        customers.acquisition_channel,
        {{ month_start('customers.first_won_at') }} as acquisition_month,
        cast(extract(year from customers.first_won_at) as integer) as acquisition_year
    from customers
    cross join as_of
    where
        customers.first_won_at is not null
        and cast(customers.first_won_at as date) <= as_of.as_of_date
),

acquired_counts as (
    select
        acquisition_channel,
        acquisition_month,
        count(*) as customers_acquired
    from acquisitions
    group by
        acquisition_channel,
        acquisition_month
),

monthly_spend as (
    {{ monthly_channel_spend('spend') }}
),

acquisition_costs as (
    select
        acquisitions.customer_id,
        acquisitions.acquisition_year,
        acquisitions.acquisition_month,
        acquisitions.acquisition_channel,
        coalesce(monthly_spend.spend, 0) / acquired_counts.customers_acquired as acquisition_cost
    from acquisitions
    inner join acquired_counts
        on
            acquisitions.acquisition_channel = acquired_counts.acquisition_channel
            and acquisitions.acquisition_month = acquired_counts.acquisition_month
    left join monthly_spend
        on
            acquisitions.acquisition_channel = monthly_spend.channel
            and acquisitions.acquisition_month = monthly_spend.month
),

-- Rows: customer × year ---------------------------------------------------------------

spine as (
    select distinct
        customer_id,
        year
    from dated_events
    union
    select
        customer_id,
        acquisition_year as year
    from acquisitions
),

{# a customer's figures over a period (a year, the trailing 12 months): event column -> figure #}
{% set period_figures = [
    ('revenue_net', 'revenue'),
    ('invoices', 'invoices'),
    ('cogs', 'cogs'),
    ('talk_minutes', 'talk_minutes'),
    ('handled_tasks', 'handled_tasks'),
] %}
{% set year_end = "cast(distinct_years.year as " ~ dbt.type_string() ~ ") || '-12-31'" -%}
years as (
    select
        distinct_years.year,
        case
            when {{ try_cast(year_end, 'date') }} < as_of.as_of_date
                then {{ try_cast(year_end, 'date') }}
            else as_of.as_of_date
        end as reference_date
    from (select distinct spine.year from spine) as distinct_years
    cross join as_of
),

yearly as (
    select
        {%- for event_column, figure in period_figures %}
            sum(dated_events.{{ event_column }}) as {{ figure }},
        {%- endfor %}
        dated_events.customer_id,
        dated_events.year
    from dated_events
    group by
        dated_events.customer_id,
        dated_events.year
),

-- Trailing 12 months to the reference date ------------------------------------------

trailing_12m as (
    select
        {%- for event_column, figure in period_figures %}
            sum(dated_events.{{ event_column }}) as {{ figure }},
        {%- endfor %}
        dated_events.customer_id,
        years.year
    from dated_events
    inner join years
        on
            dated_events.event_on <= years.reference_date
            and dated_events.event_on > cast({{ dbt.dateadd('month', -12, 'years.reference_date') }} as date)
    group by
        dated_events.customer_id,
        years.year
),

-- Retention of the segment -------------------------------------------------------------

active_years as (
    select
        yearly.customer_id,
        yearly.year,
        coalesce(customers.segment, 'unsegmented') as segment
    from yearly
    left join customers
        on yearly.customer_id = customers.customer_id
    where yearly.revenue > 0
),

retention_pairs as (
    select
        previous_year.year + 1 as year,
        previous_year.segment,
        previous_year.customer_id,
        case when this_year.customer_id is not null then 1 else 0 end as is_retained
    from active_years as previous_year
    left join active_years as this_year
        on
            previous_year.customer_id = this_year.customer_id
            and this_year.year = previous_year.year + 1
),

segment_retention as (
    select
        year,
        segment,
        {{ ratio('sum(is_retained)', 'count(*)') }} as retention_rate
    from retention_pairs
    group by
        year,
        segment
),

overall_retention as (
    select
        year,
        {{ ratio('sum(is_retained)', 'count(*)') }} as retention_rate
    from retention_pairs
    group by year
),

-- RFM ------------------------------------------------------------------------------------

purchases as (
    select
        dated_events.customer_id,
        dated_events.event_on,
        dated_events.revenue_net
    from dated_events
    where dated_events.event_type = 'invoice'
),

rfm_base as (
    select
        years.year,
        purchases.customer_id,
        -- the datediff macro renders to one long line on DuckDB
        {{ dbt.datediff('max(purchases.event_on)', 'min(years.reference_date)', 'day') }} as recency_days, -- noqa: LT05
        sum(
            case
                when purchases.event_on > cast({{ dbt.dateadd('month', -12, 'years.reference_date') }} as date)
                    then 1
                else 0
            end
        ) as frequency,
        sum(
            case
                when purchases.event_on > cast({{ dbt.dateadd('month', -12, 'years.reference_date') }} as date)
                    then purchases.revenue_net
                else 0
            end
        ) as monetary
    from years
    inner join purchases
        on years.reference_date >= purchases.event_on
    group by
        years.year,
        purchases.customer_id
),

rfm_scores as (
    select
        rfm_base.*,
        {{ quintile_score('rfm_base.recency_days desc', 'rfm_base.year') }} as r_score,
        {{ quintile_score('rfm_base.frequency', 'rfm_base.year') }} as f_score,
        {{ quintile_score('rfm_base.monetary', 'rfm_base.year') }} as m_score
    from rfm_base
),

-- ABC ------------------------------------------------------------------------------------

abc_base as (
    select
        spine.customer_id,
        spine.year,
        coalesce(yearly.revenue, 0) as revenue,
        sum(case when yearly.revenue > 0 then yearly.revenue else 0 end) over (partition by spine.year) as year_revenue,
        coalesce(
            sum(case when yearly.revenue > 0 then yearly.revenue else 0 end) over (
                partition by spine.year
                order by coalesce(yearly.revenue, 0) desc, spine.customer_id
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as revenue_ranked_above
    from spine
    left join yearly
        on
            spine.customer_id = yearly.customer_id
            and spine.year = yearly.year
),

abc as (
    select
        abc_base.customer_id,
        abc_base.year,
        {{ ratio('abc_base.revenue_ranked_above', 'abc_base.year_revenue') }} as revenue_share_above,
        case
            when abc_base.revenue <= 0 then 'C'
            when abc_base.revenue_ranked_above < 0.80 * abc_base.year_revenue then 'A'
            when abc_base.revenue_ranked_above < 0.95 * abc_base.year_revenue then 'B'
            else 'C'
        end as abc_class
    from abc_base
),

-- Together -------------------------------------------------------------------------------

joined as (
    select
        spine.customer_id,
        spine.year,
        years.reference_date,
        coalesce(customers.segment, 'unsegmented') as segment,
        coalesce(yearly.revenue, 0) as revenue,
        coalesce(yearly.cogs, 0) as cogs,
        coalesce(yearly.talk_minutes, 0) as talk_minutes,
        coalesce(yearly.handled_tasks, 0) as handled_tasks,
        coalesce(yearly.invoices, 0) as invoices,
        round(
            coalesce(yearly.talk_minutes, 0) * {{ var('cost_per_talk_minute') }}
            + coalesce(yearly.handled_tasks, 0) * {{ var('cost_per_task') }},
            2
        ) as cost_to_serve,
        round(
            coalesce(trailing_12m.revenue, 0) - coalesce(trailing_12m.cogs, 0)
            - coalesce(trailing_12m.talk_minutes, 0) * {{ var('cost_per_talk_minute') }}
            - coalesce(trailing_12m.handled_tasks, 0) * {{ var('cost_per_task') }},
            2
        ) as trailing_contribution_margin,
        coalesce(segment_retention.retention_rate, overall_retention.retention_rate) as retention_rate,
        acquisition_costs.acquisition_cost,
        acquisition_costs.acquisition_channel,
        acquisition_costs.acquisition_month,
        rfm_scores.recency_days,
        rfm_scores.frequency,
        rfm_scores.monetary,
        rfm_scores.r_score,
        rfm_scores.f_score,
        rfm_scores.m_score,
        abc.abc_class,
        abc.revenue_share_above
    from spine
    inner join years
        on spine.year = years.year
    inner join customers
        on spine.customer_id = customers.customer_id
    left join yearly
        on
            spine.customer_id = yearly.customer_id
            and spine.year = yearly.year
    left join trailing_12m
        on
            spine.customer_id = trailing_12m.customer_id
            and spine.year = trailing_12m.year
    left join segment_retention
        on
            spine.year = segment_retention.year
            and segment_retention.segment = coalesce(customers.segment, 'unsegmented')
    left join overall_retention
        on spine.year = overall_retention.year
    left join acquisition_costs
        on
            spine.customer_id = acquisition_costs.customer_id
            and spine.year = acquisition_costs.acquisition_year
    left join rfm_scores
        on
            spine.customer_id = rfm_scores.customer_id
            and spine.year = rfm_scores.year
    left join abc
        on
            spine.customer_id = abc.customer_id
            and spine.year = abc.year
),

final as (
    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(year as integer) as year,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(cogs as decimal(18, 2)) as cogs,
        cast(cost_to_serve as decimal(18, 2)) as cost_to_serve,
        cast(acquisition_cost as decimal(18, 2)) as acquisition_cost,
        cast(revenue - cogs - cost_to_serve as decimal(18, 2)) as contribution_margin,
        cast({{ clv_npv('trailing_contribution_margin', 'retention_rate') }} as decimal(18, 2)) as clv_5y,
        cast(
            case
                when r_score is not null
                    then
                        'R' || cast(r_score as {{ dbt.type_string() }})
                        || 'F' || cast(f_score as {{ dbt.type_string() }})
                        || 'M' || cast(m_score as {{ dbt.type_string() }})
            end as {{ dbt.type_string() }}
        ) as rfm_segment,
        cast(abc_class as {{ dbt.type_string() }}) as abc_class,
        cast(segment as {{ dbt.type_string() }}) as segment,
        cast(invoices as integer) as invoices,
        cast(talk_minutes as double) as talk_minutes,
        cast(handled_tasks as integer) as handled_tasks,
        cast(trailing_contribution_margin as decimal(18, 2)) as trailing_12m_contribution_margin,
        cast(retention_rate as double) as retention_rate,
        cast(reference_date as date) as reference_date,
        cast(acquisition_channel as {{ dbt.type_string() }}) as acquisition_channel,
        cast(acquisition_month as date) as acquisition_month,
        cast(recency_days as integer) as recency_days,
        cast(frequency as integer) as frequency,
        cast(monetary as decimal(18, 2)) as monetary,
        cast(r_score as integer) as r_score,
        cast(f_score as integer) as f_score,
        cast(m_score as integer) as m_score,
        cast(
            case
                when r_score is null then null
                when r_score >= 4 and f_score >= 4 and m_score >= 4 then 'champions'
                when r_score >= 3 and f_score >= 4 then 'loyal'
                when r_score >= 4 and f_score <= 2 then 'new'
                when r_score <= 2 and f_score >= 3 then 'at_risk'
                when r_score <= 2 then 'lost'
                else 'needs_attention'
            end as {{ dbt.type_string() }}
        ) as rfm_group,
        cast(revenue_share_above as double) as revenue_share_above
    from joined
)

select * from final
