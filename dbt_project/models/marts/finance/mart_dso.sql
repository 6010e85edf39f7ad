{#
    Days sales outstanding per calendar month, from the month of the first invoice to
    the month of the as-of date (var `as_of`, default today).
    DSO (metric contract) = AR at period end / invoiced revenue in the period × days in
    the period, where
    - period end = the month's last day, or the as-of date for the current month
      (is_complete_period false) — days_in_period counts the days up to it;
    - AR at period end = Σ open amount of all invoices at the end of that day
      (amount − payments applied on or before it; int_invoice_balances);
    - invoiced revenue = Σ amount of the invoices issued in the period, VAT included
      like the receivables it is compared with (invoiced_revenue_net is given beside
      it); DSO is null for a period without invoices.
#}
with

invoices as (
    select * from {{ ref('int_invoices') }}
),

balances as (
    select * from {{ ref('int_invoice_balances') }}
),

dates as (
    select * from {{ ref('dim_date') }}
),

bounds as (
    select
        cast({{ dbt.date_trunc('month', 'min(invoices.issued_on)') }} as date) as first_month,
        {{ as_of_date() }} as last_date
    from invoices
),

periods as (
    select
        dates.month_start as month,
        min(dates.date_day) as period_start,
        max(dates.date_day) as period_end,
        max(dates.date_day) = cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'dates.month_start')) }} as date) as is_complete_period
    from dates
    cross join bounds
    where dates.date_day >= bounds.first_month
        and dates.date_day <= bounds.last_date
    group by dates.month_start
),

receivables as (
    select
        periods.month,
        sum(balances.open_amount) as ar_at_period_end,
        count(*) as open_invoices
    from periods
    inner join balances
        on periods.period_end >= balances.valid_from
        and (balances.valid_to is null or periods.period_end < balances.valid_to)
    where balances.open_amount > 0
    group by periods.month
),

revenue as (
    select
        periods.month,
        sum(invoices.amount) as invoiced_revenue,
        sum(invoices.amount_net) as invoiced_revenue_net,
        count(*) as invoices_issued
    from periods
    inner join invoices
        on invoices.issued_on >= periods.period_start
        and invoices.issued_on <= periods.period_end
    group by periods.month
),

measured as (
    select
        periods.month,
        periods.period_end,
        periods.is_complete_period,
        {{ dbt.datediff('periods.period_start', 'periods.period_end', 'day') }} + 1 as days_in_period,
        coalesce(receivables.ar_at_period_end, 0) as ar_at_period_end,
        coalesce(receivables.open_invoices, 0) as open_invoices,
        coalesce(revenue.invoiced_revenue, 0) as invoiced_revenue,
        coalesce(revenue.invoiced_revenue_net, 0) as invoiced_revenue_net,
        coalesce(revenue.invoices_issued, 0) as invoices_issued
    from periods
    left join receivables
        on receivables.month = periods.month
    left join revenue
        on revenue.month = periods.month
),

final as (
    select
        cast(month as date) as month,
        cast(ar_at_period_end as decimal(18, 2)) as ar_at_period_end,
        cast(invoiced_revenue as decimal(18, 2)) as invoiced_revenue,
        cast(days_in_period as integer) as days_in_period,
        cast(
            case
                when invoiced_revenue > 0
                    then cast(ar_at_period_end as double) * days_in_period / cast(invoiced_revenue as double)
            end as double
        ) as dso,
        cast(period_end as date) as period_end,
        cast(is_complete_period as boolean) as is_complete_period,
        cast(invoiced_revenue_net as decimal(18, 2)) as invoiced_revenue_net,
        cast(invoices_issued as integer) as invoices_issued,
        cast(open_invoices as integer) as open_invoices
    from measured
)

select * from final
