{#
    One row per lead (int_leads) with its first response — the input of lead processing
    (mart_lead_processing) and of the scorecard's median first-response minutes.

    First response: the earliest of, at or after the lead's creation,
    - an outbound call (fct_call, any PBX, answered or not: the attempt is the response)
      to any of the lead's phones (E.164 equality with the call's external number);
    - a Salesforce Task on the lead (WhoId = the lead) — a logged call or e-mail
      (TaskSubtype Call / Email) or a closed task — dated by its CreatedDate.
    Bitrix exports carry no activities, so Bitrix leads are answered by calls only.

    - first_response_working_minutes: working minutes from creation to the first
      response (working_minute_index of the core working calendar: Mon–Fri 09:00–18:00,
      national holidays off, by default), rounded to 0.01; a lead created in the evening
      and called at 09:10 the next working day took 10 minutes.
    - is_processed: a first response happened (at any time).
    - is_ignored: no first response within var response_window_working_hours (24)
      working hours of creation (never answered, or answered later).
    - awaiting_response: not answered yet and the window had not closed by the latest
      activity in the data (also counted in is_ignored by the metric; shown so that
      fresh leads can be told apart).
#}
{%- set window_minutes = '60.0 * (' ~ var('response_window_working_hours', 24) ~ ')' -%}
with

leads as (
    select * from {{ ref('int_leads') }}
),

calls as (
    select * from {{ ref('fct_call') }}
),

tasks as (
    select * from {{ ref('stg_salesforce__task') }}
),

lead_phones as (
    select
        leads.lead_id,
        leads.created_at,
        leads.phone_1_e164 as phone_e164
    from leads
    where leads.phone_1_e164 is not null
    union
    select
        leads.lead_id,
        leads.created_at,
        leads.phone_2_e164 as phone_e164
    from leads
    where leads.phone_2_e164 is not null
),

call_responses as (
    select
        lead_phones.lead_id,
        calls.started_at as response_at,
        'outbound_call' as response_type,
        calls.call_id as response_id
    from lead_phones
    inner join calls
        on lead_phones.phone_e164 = calls.external_e164
    where
        calls.direction = 'outbound'
        and calls.started_at >= lead_phones.created_at
),

task_responses as (
    select
        leads.lead_id,
        tasks.created_at as response_at,
        case lower(coalesce(tasks.task_subtype, 'task'))
            when 'call' then 'crm_call'
            when 'email' then 'crm_email'
            else 'crm_task'
        end as response_type,
        tasks.task_id as response_id
    from leads
    inner join tasks
        on leads.source_lead_id = tasks.who_id
    where
        leads.source_system = 'salesforce'
        and tasks.created_at >= leads.created_at
        and (
            lower(coalesce(tasks.task_subtype, 'task')) in ('call', 'email')
            or tasks.is_closed
        )
),

responses as (
    select * from call_responses
    union all
    select * from task_responses
),

first_responses as (
    select
        lead_id,
        response_at,
        response_type,
        response_id
    from (
        select
            responses.*,
            row_number() over (
                partition by responses.lead_id
                order by responses.response_at, responses.response_type, responses.response_id
            ) as response_rank
        from responses
    ) as ranked
    where response_rank = 1
),

horizon as (
    select max(activity_at) as last_activity_at
    from (
        select max(calls.started_at) as activity_at from calls
        union all
        select max(tasks.created_at) as activity_at from tasks
        union all
        select max(leads.created_at) as activity_at from leads
    ) as activity
),

horizon_indexed as (
    select {{ working_minute_index('horizon.last_activity_at') }} as last_activity_wmi
    from horizon
),

timed as (
    select
        leads.lead_id,
        leads.source_system,
        leads.source_lead_id,
        leads.created_at,
        leads.created_month,
        leads.channel,
        leads.manager_id,
        leads.is_converted,
        leads.customer_id,
        first_responses.response_at as first_response_at,
        first_responses.response_type as first_response_type,
        first_responses.response_id as first_response_id,
        {{ working_minute_index('leads.created_at') }} as created_wmi,
        {{ working_minute_index('first_responses.response_at') }} as response_wmi
    from leads
    left join first_responses
        on leads.lead_id = first_responses.lead_id
),

final as (
    select
        timed.lead_id,
        timed.source_system,
        timed.source_lead_id,
        timed.created_at,
        timed.created_month,
        timed.channel,
        timed.manager_id,
        timed.customer_id,
        timed.is_converted,
        timed.first_response_at,
        timed.first_response_type,
        timed.first_response_id,
        round(timed.response_wmi - timed.created_wmi, 2) as first_response_working_minutes,
        timed.first_response_at is not null as is_processed,
        not coalesce(timed.response_wmi - timed.created_wmi <= {{ window_minutes }}, false) as is_ignored,
        timed.first_response_at is null
        and coalesce(horizon_indexed.last_activity_wmi - timed.created_wmi < {{ window_minutes }}, false)
            as awaiting_response
    from timed
    cross join horizon_indexed
)

select * from final
