{#
    Salesforce tasks and e-mails (Task records whose TaskSubtype is not `Call`; calls are
    counted from the telephony, fct_call), one row per task, with their owner and customer.

    - manager_id: OwnerId (Salesforce user Id).
    - customer_id: the customer of the task's WhoId (contact or lead) or, failing that,
      of its WhatId (opportunity or account), through int_customer_keys.
    - due_on: ActivityDate (the due date), else the creation date.
    - is_handled: the task is closed (IsClosed) — a "handled task" of cost to serve and
      a done task of the manager scorecard, dated by due_on (the export has no completion
      date).
    - is_overdue: still open and due before the as-of date (var as_of, default today).
#}
with

tasks as (
    select * from {{ ref('stg_salesforce__task') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

non_call_tasks as (
    select *
    from tasks
    where
        coalesce(lower(task_subtype), 'task') <> 'call'
        and task_id is not null
),

-- the task's candidate keys in the order they are tried (priority 1, 2, …); one join and
-- one grouping rather than four joins, whose four hash tables a large build had to hold
-- at once. Per candidate: int_customer_keys source_system, the key, the task's reference.
{%- set candidate_keys = [
    ('salesforce_contact', 'who_id', 'who_id'),
    ('salesforce_lead', 'who_id', 'who_id'),
    ('deal', "'sf:' || what_id", 'what_id'),
    ('salesforce_account', 'what_id', 'what_id'),
] %}
task_keys as (
    {%- for source_system, source_key, reference in candidate_keys %}
        select
            task_id,
            {{ loop.index }} as priority,
            '{{ source_system }}' as source_system,
            {{ source_key }} as source_key
        from non_call_tasks
        where {{ reference }} is not null
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

task_customers as (
    select
        task_keys.task_id,
        {{ value_at_min('customer_keys.customer_id', ['task_keys.priority']) }} as customer_id
    from task_keys
    inner join customer_keys
        on
            task_keys.source_system = customer_keys.source_system
            and task_keys.source_key = customer_keys.source_key
    where customer_keys.customer_id is not null
    group by task_keys.task_id
),

final as (
    select
        non_call_tasks.task_id,
        coalesce(lower(non_call_tasks.task_subtype), 'task') as task_subtype,
        non_call_tasks.owner_id as manager_id,
        task_customers.customer_id,
        non_call_tasks.who_id,
        non_call_tasks.what_id,
        coalesce(non_call_tasks.activity_date, cast(non_call_tasks.created_at as date)) as due_on,
        non_call_tasks.created_at,
        non_call_tasks.task_status,
        non_call_tasks.is_closed as is_handled,
        not non_call_tasks.is_closed
        and coalesce(non_call_tasks.activity_date, cast(non_call_tasks.created_at as date))
        < cast({{ as_of_timestamp() }} as date) as is_overdue
    from non_call_tasks
    left join task_customers
        on non_call_tasks.task_id = task_customers.task_id
)

select * from final
