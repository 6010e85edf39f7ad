{#
    Everything that makes a customer profitable or costly, one row per event with its
    date, so that any period (calendar year, trailing 12 months) is a simple filter:

    | event_type | source                 | event_on    | amounts                                          |
    |------------|------------------------|-------------|--------------------------------------------------|
    | invoice    | fct_invoice            | issued_on   | revenue_net = amount_net (reporting currency)    |
    | cogs       | int_cogs (deal lines)  | sale_date   | cogs = quantity × unit cost valid on that date   |
    | call       | fct_call (answered)    | started_at  | talk_minutes = talk_seconds / 60                 |
    | task       | int_activity_tasks     | due_on      | handled_tasks = 1 (closed task / e-mail)         |

    Cost to serve (talk minutes × var cost_per_talk_minute + handled tasks × var
    cost_per_task) is priced where the events are summed (mart_customer_profitability).
    Only events of a resolved customer (customer_id not null).
#}
with

invoices as (
    select * from {{ ref('fct_invoice') }}
),

cogs as (
    select * from {{ ref('int_cogs') }}
),

calls as (
    select * from {{ ref('fct_call') }}
),

tasks as (
    select * from {{ ref('int_activity_tasks') }}
),

events as (
    select
        invoices.customer_id,
        'invoice' as event_type,
        invoices.invoice_id as event_id,
        invoices.issued_on as event_on,
        invoices.amount_net as revenue_net,
        1 as invoices,
        0 as cogs,
        0 as talk_minutes,
        0 as handled_tasks
    from invoices
    where invoices.issued_on is not null

    union all

    select
        cogs.customer_id,
        'cogs' as event_type,
        cogs.line_item_id as event_id,
        cogs.sale_date as event_on,
        0 as revenue_net,
        0 as invoices,
        coalesce(cogs.cogs, 0) as cogs,
        0 as talk_minutes,
        0 as handled_tasks
    from cogs
    where cogs.sale_date is not null

    union all

    select
        calls.customer_id,
        'call' as event_type,
        calls.call_id as event_id,
        cast(calls.started_at as date) as event_on,
        0 as revenue_net,
        0 as invoices,
        0 as cogs,
        {{ ratio('coalesce(calls.talk_seconds, 0)', 60) }} as talk_minutes,
        0 as handled_tasks
    from calls
    where
        calls.status = 'answered'
        and calls.started_at is not null

    union all

    select
        tasks.customer_id,
        'task' as event_type,
        tasks.task_id as event_id,
        tasks.due_on as event_on,
        0 as revenue_net,
        0 as invoices,
        0 as cogs,
        0 as talk_minutes,
        1 as handled_tasks
    from tasks
    where tasks.is_handled
),

final as (
    select
        events.customer_id,
        events.event_type,
        events.event_id,
        cast(events.event_on as date) as event_on,
        cast(events.revenue_net as decimal(18, 2)) as revenue_net,
        cast(events.invoices as integer) as invoices,
        cast(events.cogs as decimal(18, 2)) as cogs,
        cast(events.talk_minutes as double) as talk_minutes,
        cast(events.handled_tasks as integer) as handled_tasks
    from events
    where events.customer_id is not null
)

select * from final
