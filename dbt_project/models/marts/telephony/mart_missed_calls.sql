{#
    Missed inbound calls per day × manager (metric "Missed inbound calls" of the lost
    revenue contract), one row per day and manager with at least one inbound call.

    - manager_id: the call's employee (fct_call.manager_id: who answered, or the one
      extension that rang); null for calls that reached no single known employee (a queue
      or ring group nobody answered, an unmapped extension).
    - missed_calls: inbound calls not answered (status missed, busy or failed);
    - missed_without_callback: of those, the calls whose number got no ANSWERED call
      (inbound or outbound) within var response_window_working_hours (24) working hours
      (int_missed_call_callbacks);
    - estimated_lost_value = missed_without_callback × lead-to-won rate × average won
      amount of the same calendar month (int_monthly_lead_to_won) — an ESTIMATE.
#}
with

calls as (
    select * from {{ ref('fct_call') }}
),

missed as (
    select * from {{ ref('int_missed_call_callbacks') }}
),

monthly_rates as (
    select * from {{ ref('int_monthly_lead_to_won') }}
),

inbound as (
    select
        calls.call_date as day,
        calls.manager_id,
        count(*) as inbound_calls
    from calls
    where calls.direction = 'inbound'
    group by
        calls.call_date,
        calls.manager_id
),

missed_daily as (
    select
        missed.call_date as day,
        missed.manager_id,
        count(*) as missed_calls,
        sum(case when missed.has_callback then 1 else 0 end) as missed_with_callback,
        sum(case when missed.has_callback then 0 else 1 end) as missed_without_callback,
        sum(case when missed.awaiting_callback then 1 else 0 end) as awaiting_callback
    from missed
    group by
        missed.call_date,
        missed.manager_id
),

joined as (
    select
        inbound.day,
        inbound.manager_id,
        inbound.inbound_calls,
        coalesce(missed_daily.missed_calls, 0) as missed_calls,
        coalesce(missed_daily.missed_with_callback, 0) as missed_with_callback,
        coalesce(missed_daily.missed_without_callback, 0) as missed_without_callback,
        coalesce(missed_daily.awaiting_callback, 0) as awaiting_callback,
        monthly_rates.lead_to_won_rate,
        monthly_rates.avg_won_amount
    from inbound
    left join missed_daily
        on
            inbound.day = missed_daily.day
            and coalesce(missed_daily.manager_id, '') = coalesce(inbound.manager_id, '')
    left join monthly_rates
        on monthly_rates.month = {{ month_start('inbound.day') }}
),

final as (
    select
        cast(day as date) as day,
        cast(manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(missed_calls as integer) as missed_calls,
        cast(missed_without_callback as integer) as missed_without_callback,
        cast(
            case
                when missed_without_callback = 0 or lead_to_won_rate = 0 then 0
                else missed_without_callback * lead_to_won_rate * avg_won_amount
            end as decimal(18, 2)
        ) as estimated_lost_value,
        cast(inbound_calls as integer) as inbound_calls,
        cast(missed_with_callback as integer) as missed_with_callback,
        cast(awaiting_callback as integer) as awaiting_callback,
        cast(lead_to_won_rate as double) as lead_to_won_rate,
        cast(avg_won_amount as decimal(18, 2)) as avg_won_amount
    from joined
)

select * from final
