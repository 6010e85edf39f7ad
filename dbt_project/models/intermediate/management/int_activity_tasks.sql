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
    where coalesce(lower(tasks.task_subtype), 'task') <> 'call'
        and tasks.task_id is not null
),

final as (
    select
        non_call_tasks.task_id,
        coalesce(lower(non_call_tasks.task_subtype), 'task') as task_subtype,
        non_call_tasks.owner_id as manager_id,
        coalesce(
            contact_keys.customer_id,
            lead_keys.customer_id,
            deal_keys.customer_id,
            account_keys.customer_id
        ) as customer_id,
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
    left join customer_keys as contact_keys
        on contact_keys.source_system = 'salesforce_contact'
        and contact_keys.source_key = non_call_tasks.who_id
    left join customer_keys as lead_keys
        on lead_keys.source_system = 'salesforce_lead'
        and lead_keys.source_key = non_call_tasks.who_id
    left join customer_keys as deal_keys
        on deal_keys.source_system = 'deal'
        and deal_keys.source_key = 'sf:' || non_call_tasks.what_id
    left join customer_keys as account_keys
        on account_keys.source_system = 'salesforce_account'
        and account_keys.source_key = non_call_tasks.what_id
)

select * from final
