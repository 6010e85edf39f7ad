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

days as (
    {{ receivables_days(ref('dim_date'), 'invoices', whole_first_month=true) }}
),

periods as (
    select
        days.month_start as month,
        min(days.date_day) as period_start,
        max(days.date_day) as period_end,
        max(case when days.is_month_end then 1 else 0 end) = 1 as is_complete_period
    from days
    group by days.month_start
),

open_at_period_end as (
    {{ open_invoices_on('periods', 'period_end', ref('int_invoice_balances')) }}
),

receivables as (
    select
        open_at_period_end.month,
        sum(open_at_period_end.open_amount) as ar_at_period_end,
        count(*) as open_invoices
    from open_at_period_end
    group by open_at_period_end.month
),

revenue as (
    select
        periods.month,
        sum(invoices.amount) as invoiced_revenue,
        sum(invoices.amount_net) as invoiced_revenue_net,
        count(*) as invoices_issued
    from periods
    inner join invoices
        on
            periods.period_start <= invoices.issued_on
            and periods.period_end >= invoices.issued_on
    group by periods.month
),

measured as (
    select
        periods.month,
        periods.period_end,
        periods.is_complete_period,
        -- the datediff macro renders to one long line on DuckDB
        {{ dbt.datediff('periods.period_start', 'periods.period_end', 'day') }} + 1 as days_in_period, -- noqa: LT05
        coalesce(receivables.ar_at_period_end, 0) as ar_at_period_end,
        coalesce(receivables.open_invoices, 0) as open_invoices,
        coalesce(revenue.invoiced_revenue, 0) as invoiced_revenue,
        coalesce(revenue.invoiced_revenue_net, 0) as invoiced_revenue_net,
        coalesce(revenue.invoices_issued, 0) as invoices_issued
    from periods
    left join receivables
        on periods.month = receivables.month
    left join revenue
        on periods.month = revenue.month
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
