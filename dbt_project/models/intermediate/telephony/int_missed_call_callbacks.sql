{#
    One row per missed inbound call (fct_call: direction inbound, status not `answered` —
    missed, busy or failed) and whether an answered callback followed.

    Callback: the same external number (E.164) got an ANSWERED call, inbound or outbound,
    on any PBX, starting after the missed call and at most var
    response_window_working_hours (default 24) working hours after it. Working time is
    counted with the core working calendar (working_minute_index: Mon–Fri 09:00–18:00 by
    default, national holidays off, transferred working days on), so a call missed on
    Friday at 17:50 before a Monday holiday still has 23 h 50 min of window from Tuesday
    09:00.

    Set-based and linear: missed calls and answered calls of the same number are put in
    one sequence ordered by start; for each missed call the earliest answered call after it
    is found with a window function (partitioned by the number — no join between all
    missed and all later calls). The working-minute index grows with time, so the earliest
    answered call is the one to test against the window.

    A missed call without a number (hidden caller id) has no callback (and is not
    awaiting one). awaiting_callback: no callback yet and the window had not closed by the last call in
    the data (the callback may still come; these calls are also counted as without
    callback by the metric).
#}
{%- set window_minutes = '60.0 * (' ~ var('response_window_working_hours', 24) ~ ')' -%}
with

calls as (
    select * from {{ ref('fct_call') }}
),

horizon as (
    select max(calls.started_at) as last_call_at
    from calls
),

horizon_indexed as (
    select
        horizon.last_call_at,
        {{ working_minute_index('horizon.last_call_at') }} as last_call_wmi
    from horizon
),

events as (
    select
        calls.call_id,
        calls.started_at,
        calls.external_e164,
        calls.manager_id,
        calls.customer_id,
        calls.status,
        calls.source_system,
        calls.direction = 'inbound' and calls.status <> 'answered' as is_missed_inbound,
        calls.status = 'answered' and calls.direction in ('inbound', 'outbound') as is_callback_candidate
    from calls
    where
        (calls.direction = 'inbound' and calls.status <> 'answered')
        or (
            calls.status = 'answered' and calls.direction in ('inbound', 'outbound') and calls.external_e164 is not null
        )
),

indexed as (
    select
        events.*,
        {{ working_minute_index('events.started_at') }} as wmi
    from events
),

sequenced as (
    select
        indexed.*,
        -- at the same second an answered call sorts first, so it is not "after" the missed one
        min(case when indexed.is_callback_candidate then indexed.started_at end) over (
            partition by indexed.external_e164
            order by indexed.started_at, case when indexed.is_callback_candidate then 0 else 1 end, indexed.call_id
            rows between 1 following and unbounded following
        ) as callback_started_at,
        min(case when indexed.is_callback_candidate then indexed.wmi end) over (
            partition by indexed.external_e164
            order by indexed.started_at, case when indexed.is_callback_candidate then 0 else 1 end, indexed.call_id
            rows between 1 following and unbounded following
        ) as callback_wmi
    from indexed
),

missed as (
    select
        sequenced.*,
        case
            when sequenced.external_e164 is not null and sequenced.callback_started_at is not null
                then round(sequenced.callback_wmi - sequenced.wmi, 2)
        end as callback_working_minutes
    from sequenced
    where sequenced.is_missed_inbound
),

callback_calls as (
    select
        indexed.external_e164,
        indexed.started_at,
        min(indexed.call_id) as call_id
    from indexed
    where indexed.is_callback_candidate
    group by
        indexed.external_e164,
        indexed.started_at
),

final as (
    select
        missed.call_id,
        cast(missed.started_at as date) as call_date,
        missed.started_at,
        missed.manager_id,
        missed.customer_id,
        missed.external_e164,
        missed.status,
        missed.source_system,
        missed.wmi as working_minute_index,
        callback_calls.call_id as next_answered_call_id,
        missed.callback_started_at as next_answered_at,
        missed.callback_working_minutes as next_answered_working_minutes,
        coalesce(missed.callback_working_minutes <= {{ window_minutes }}, false) as has_callback,
        case
            when coalesce(missed.callback_working_minutes <= {{ window_minutes }}, false) then false
            when missed.external_e164 is null then false
            else coalesce(horizon_indexed.last_call_wmi - missed.wmi < {{ window_minutes }}, false)
        end as awaiting_callback
    from missed
    left join callback_calls
        on
            missed.external_e164 = callback_calls.external_e164
            and missed.callback_started_at = callback_calls.started_at
    cross join horizon_indexed
)

select * from final
