{#
    Manager scorecard per month × manager (docs/metrics.md, "Sales management"). Months are
    calendar months of the company time zone, up to the month of the as-of date (var
    as_of, default today).

    - clients_in_work: distinct customers with a deal of the manager open at some moment
      of the month (created before the month's end, not closed before its start); a deal
      without a resolved customer counts as one client;
    - new_leads / median_first_response_minutes: leads of the manager created in the
      month (int_lead_first_response) and the median of their first response time in
      working minutes (working hours of the configured calendar), over the leads that got
      a response;
    - calls_made: outbound calls the manager placed; calls_answered: inbound calls the
      manager answered; talk_minutes: talk time of all the manager's calls (fct_call);
    - tasks_done: tasks and e-mails (Salesforce Task, not calls) due in the month and
      closed; tasks_overdue: those due in the month, still open and past due as of the
      as-of date (int_activity_tasks);
    - deals_won / deals_lost closed in the month; win_rate = won / (won + lost) closed
      in the month; won_revenue = Σ amount of the won deals; avg_deal = won_revenue /
      deals_won; avg_cycle_days = mean sales cycle (fct_deal.sales_cycle_days) of the
      deals won in the month;
    - receivables_overdue: open amount of the manager's invoices that are overdue at the
      month's end (mart_receivables_aging, snapshot of the month's last day, or of the
      as-of date in the current month).
    Rows: every manager with anything to show in the month.
#}
with

deals as (
    select * from {{ ref('fct_deal') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

lead_responses as (
    select * from {{ ref('int_lead_first_response') }}
),

calls as (
    select * from {{ ref('fct_call') }}
),

tasks as (
    select * from {{ ref('int_activity_tasks') }}
),

aging as (
    select * from {{ ref('mart_receivables_aging') }}
),

dates as (
    select * from {{ ref('dim_date') }}
),

as_of as (
    select
        cast({{ as_of_timestamp() }} as date) as as_of_date,
        {{ month_start(as_of_timestamp()) }} as as_of_month
),

-- Deals -----------------------------------------------------------------------------------

deal_bounds as (
    select {{ month_start('min(deals.created_at)') }} as first_month
    from deals
),

months as (
    select distinct
        dates.month_start as month,
        cast({{ dbt.dateadd('month', 1, 'dates.month_start') }} as date) as next_month
    from dates
    cross join deal_bounds
    cross join as_of
    where
        dates.month_start >= deal_bounds.first_month
        and dates.month_start <= as_of.as_of_month
),

clients as (
    select
        months.month,
        deals.manager_id,
        count(distinct coalesce(customer_keys.customer_id, deals.deal_id)) as clients_in_work
    from deals
    inner join months
        on
            deals.created_at < {{ date_to_timestamp('months.next_month') }}
            and (deals.closed_at is null or deals.closed_at >= {{ date_to_timestamp('months.month') }})
    left join customer_keys
        on
            customer_keys.source_system = 'deal'
            and deals.deal_id = customer_keys.source_key
    where
        deals.manager_id is not null
        and deals.created_at is not null
    group by
        months.month,
        deals.manager_id
),

closed_deals as (
    select
        {{ month_start('deals.closed_at') }} as month,
        deals.manager_id,
        sum(case when deals.status = 'won' then 1 else 0 end) as deals_won,
        sum(case when deals.status = 'lost' then 1 else 0 end) as deals_lost,
        sum(case when deals.status = 'won' then deals.amount end) as won_revenue,
        sum(case when deals.status = 'won' and deals.amount is not null then 1 else 0 end) as won_deals_with_amount,
        avg(case when deals.status = 'won' then deals.sales_cycle_days end) as avg_cycle_days
    from deals
    where
        deals.status in ('won', 'lost')
        and deals.closed_at is not null
        and deals.manager_id is not null
    group by
        {{ month_start('deals.closed_at') }},
        deals.manager_id
),

-- Leads -----------------------------------------------------------------------------------

leads as (
    select
        {{ month_start('lead_responses.created_at') }} as month,
        lead_responses.manager_id,
        count(*) as new_leads,
        {{ percentile_cont('lead_responses.first_response_working_minutes', 0.5) }} as median_first_response_minutes
    from lead_responses
    where
        lead_responses.manager_id is not null
        and lead_responses.created_at is not null
    group by
        {{ month_start('lead_responses.created_at') }},
        lead_responses.manager_id
),

-- Calls -----------------------------------------------------------------------------------

call_figures as (
    select
        {{ month_start('calls.started_at') }} as month,
        calls.manager_id,
        sum(case when calls.direction = 'outbound' then 1 else 0 end) as calls_made,
        sum(case when calls.direction = 'inbound' and calls.status = 'answered' then 1 else 0 end) as calls_answered,
        {{ ratio('sum(coalesce(calls.talk_seconds, 0))', 60) }} as talk_minutes
    from calls
    where
        calls.manager_id is not null
        and calls.started_at is not null
    group by
        {{ month_start('calls.started_at') }},
        calls.manager_id
),

-- Tasks -----------------------------------------------------------------------------------

task_figures as (
    select
        {{ month_start('tasks.due_on') }} as month,
        tasks.manager_id,
        sum(case when tasks.is_handled then 1 else 0 end) as tasks_done,
        sum(case when tasks.is_overdue then 1 else 0 end) as tasks_overdue
    from tasks
    cross join as_of
    where
        tasks.manager_id is not null
        and tasks.due_on <= as_of.as_of_date
    group by
        {{ month_start('tasks.due_on') }},
        tasks.manager_id
),

-- Receivables -----------------------------------------------------------------------------

snapshot_days as (
    select
        months.month,
        case
            when cast({{ dbt.dateadd('day', -1, 'months.next_month') }} as date) < as_of.as_of_date
                then cast({{ dbt.dateadd('day', -1, 'months.next_month') }} as date)
            else as_of.as_of_date
        end as snapshot_date
    from months
    cross join as_of
),

receivables as (
    select
        snapshot_days.month,
        aging.manager_id,
        sum(case when aging.days_overdue > 0 then aging.open_amount else 0 end) as receivables_overdue
    from aging
    inner join snapshot_days
        on aging.as_of_date = snapshot_days.snapshot_date
    where aging.manager_id is not null
    group by
        snapshot_days.month,
        aging.manager_id
),

-- Together --------------------------------------------------------------------------------

spine as (
    select
        month,
        manager_id
    from clients
    union
    select
        month,
        manager_id
    from closed_deals
    union
    select
        month,
        manager_id
    from leads
    union
    select
        month,
        manager_id
    from call_figures
    union
    select
        month,
        manager_id
    from task_figures
    union
    select
        month,
        manager_id
    from receivables
    where receivables_overdue > 0
),

final as (
    select
        cast(spine.month as date) as month,
        cast(spine.manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(coalesce(clients.clients_in_work, 0) as bigint) as clients_in_work,
        cast(coalesce(leads.new_leads, 0) as bigint) as new_leads,
        cast(leads.median_first_response_minutes as double) as median_first_response_minutes,
        cast(coalesce(call_figures.calls_made, 0) as bigint) as calls_made,
        cast(coalesce(call_figures.calls_answered, 0) as bigint) as calls_answered,
        cast(coalesce(call_figures.talk_minutes, 0) as double) as talk_minutes,
        cast(coalesce(task_figures.tasks_done, 0) as bigint) as tasks_done,
        cast(coalesce(task_figures.tasks_overdue, 0) as bigint) as tasks_overdue,
        cast(coalesce(closed_deals.deals_won, 0) as bigint) as deals_won,
        cast(coalesce(closed_deals.deals_lost, 0) as bigint) as deals_lost,
        cast(
            {{ ratio('closed_deals.deals_won', 'closed_deals.deals_won + closed_deals.deals_lost') }}
            as double
        ) as win_rate,
        cast(coalesce(closed_deals.won_revenue, 0) as decimal(18, 2)) as won_revenue,
        {{ money_ratio('closed_deals.won_revenue', 'closed_deals.won_deals_with_amount') }} as avg_deal,
        cast(closed_deals.avg_cycle_days as double) as avg_cycle_days,
        cast(coalesce(receivables.receivables_overdue, 0) as decimal(18, 2)) as receivables_overdue
    from spine
    left join clients
        on
            spine.month = clients.month
            and spine.manager_id = clients.manager_id
    left join closed_deals
        on
            spine.month = closed_deals.month
            and spine.manager_id = closed_deals.manager_id
    left join leads
        on
            spine.month = leads.month
            and spine.manager_id = leads.manager_id
    left join call_figures
        on
            spine.month = call_figures.month
            and spine.manager_id = call_figures.manager_id
    left join task_figures
        on
            spine.month = task_figures.month
            and spine.manager_id = task_figures.manager_id
    left join receivables
        on
            spine.month = receivables.month
            and spine.manager_id = receivables.manager_id
)

select * from final
