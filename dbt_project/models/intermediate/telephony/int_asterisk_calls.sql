{#
    One row per logical Asterisk call: the legs of int_call_legs merged.

    - started_at: the earliest leg start.
    - direction (from the origin leg, the leg that started the call):
      context `inbound` -> inbound; else a call placed by an internal phone (caller side
      internal) or in an `internal` context -> internal when it dialled an internal number
      or a dialplan step (IVR `s`, `t`, a menu digit: pbx_contexts `service`), outbound
      otherwise; else (an external caller in an unknown context) inbound.
    - status: `answered` when any leg was answered; else `missed` when any leg rang
      unanswered (NO ANSWER); else `busy` when any leg was BUSY; else `failed`
      (FAILED / CONGESTION).
    - answered_at: the first answer of any leg.
    - wait_seconds: started_at -> answered_at; for an unanswered call the whole duration,
      started_at -> the end of the last leg.
    - talk_seconds: from the first answer to the end of the last answered leg (answer +
      billsec): the billsec of a call answered once; a transfer adds the time talked after
      it. 0 when not answered.
    - extension: the employee's phone of the call — inbound: the extension that answered
      first, else the one extension that rang when only one did (a direct line), else the
      number dialled when internal (a queue / ring group, which maps to an employee only
      if extensions.csv lists it); outbound / internal: the calling extension.
    - external_e164: the customer side — the caller of an inbound call, the number
      dialled by an outbound call; null for internal calls and hidden numbers.
#}
{#- One pass over the legs, grouped by call: the origin leg's fields are taken where
    leg_number = 1, the first answered leg's by the least answer key; no window and no
    join of two call-sized sets, so the model runs in DuckDB's memory limit at any size. -#}
{%- set origin = ['legs.leg_number'] -%}
{%- set first_answer = [
    'case when legs.is_answered then 0 else 1 end',
    'case when legs.answered_at is null then 1 else 0 end',
    'coalesce(legs.answered_at, legs.started_at, legs.ended_at)',
    'coalesce(legs.started_at, legs.ended_at)',
    'legs.leg_number',
] -%}
with

legs as (
    select * from {{ ref('int_call_legs') }}
),

aggregated as (
    select
        legs.call_id,
        min(legs.started_at) as started_at,
        max(legs.ended_at) as ended_at,
        min(case when legs.is_answered then legs.answered_at end) as answered_at,
        max(
            case
                when legs.is_answered and legs.answered_at is not null
                    then {{ dbt.dateadd('second', 'coalesce(legs.billsec_seconds, 0)', 'legs.answered_at') }}
            end
        ) as talk_ended_at,
        max(case when legs.is_answered then legs.billsec_seconds end) as max_billsec_seconds,
        max(legs.duration_seconds) as max_duration_seconds,
        max(case when legs.is_answered then 1 else 0 end) as any_answered,
        max(case when legs.disposition = 'NO ANSWER' then 1 else 0 end) as any_no_answer,
        max(case when legs.disposition = 'BUSY' then 1 else 0 end) as any_busy,
        -- one extension rang when the least and the greatest are the same
        min(case when legs.callee_is_internal then legs.callee_extension end) as rung_extension,
        max(case when legs.callee_is_internal then legs.callee_extension end) as rung_extension_last,
        {{ value_at_min('case when legs.is_answered then legs.callee_extension end', first_answer) }}
            as first_answer_extension,
        count(*) as legs,
        min(legs.merge_rule) as merge_rule,
        {{ value_at_min('legs.call_key', origin) }} as call_key,
        {{ value_at_min('legs.dcontext', origin) }} as dcontext,
        {{ value_at_min('legs.context_type', origin) }} as context_type,
        {{ value_at_min('legs.caller_number', origin) }} as caller_number,
        {{ value_at_min('legs.caller_e164', origin) }} as caller_e164,
        {{ value_at_min('legs.callee_number', origin) }} as callee_number,
        {{ value_at_min('legs.callee_e164', origin) }} as callee_e164,
        {{ value_at_min('legs.caller_is_internal', origin) }} as origin_caller_is_internal,
        {{ value_at_min('legs.callee_is_internal', origin) }} as origin_callee_is_internal,
        {{ value_at_min('legs.callee_is_service', origin) }} as origin_callee_is_service,
        {{ value_at_min('legs.caller_extension', origin) }} as origin_caller_extension,
        {{ value_at_min('legs.dialled_extension', origin) }} as origin_dialled_extension
    from legs
    group by legs.call_id
),

directed as (
    select
        aggregated.*,
        case
            when aggregated.context_type = 'inbound' then 'inbound'
            when aggregated.origin_caller_is_internal or aggregated.context_type = 'internal'
                then
                    case
                        when aggregated.origin_callee_is_internal or aggregated.origin_callee_is_service
                            then 'internal'
                        else 'outbound'
                    end
            else 'inbound'
        end as direction,
        case
            when aggregated.any_answered = 1 then 'answered'
            when aggregated.any_no_answer = 1 then 'missed'
            when aggregated.any_busy = 1 then 'busy'
            else 'failed'
        end as status
    from aggregated
),

final as (
    select
        directed.call_id,
        directed.call_key as source_call_id,
        directed.started_at,
        directed.answered_at,
        directed.ended_at,
        directed.direction,
        directed.status,
        directed.caller_number,
        directed.callee_number,
        directed.caller_e164,
        directed.callee_e164,
        case directed.direction
            when 'inbound' then directed.caller_e164
            when 'outbound' then directed.callee_e164
        end as external_e164,
        case
            when directed.direction = 'inbound'
                then coalesce(
                    directed.first_answer_extension,
                    case when directed.rung_extension = directed.rung_extension_last then directed.rung_extension end,
                    directed.origin_dialled_extension
                )
            else directed.origin_caller_extension
        end as extension,
        case
            when directed.status = 'answered'
                then coalesce(
                    {{ seconds_between('directed.started_at', 'directed.answered_at') }},
                    directed.max_duration_seconds - directed.max_billsec_seconds
                )
            else coalesce(
                {{ seconds_between('directed.started_at', 'directed.ended_at') }},
                directed.max_duration_seconds
            )
        end as wait_seconds,
        case
            when directed.status = 'answered'
                then coalesce(
                    {{ seconds_between('directed.answered_at', 'directed.talk_ended_at') }},
                    directed.max_billsec_seconds,
                    0
                )
            else 0
        end as talk_seconds,
        directed.legs,
        directed.merge_rule,
        directed.dcontext as origin_context,
        directed.context_type as origin_context_type
    from directed
)

select * from final
