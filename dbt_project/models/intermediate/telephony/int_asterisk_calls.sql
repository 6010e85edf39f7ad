{#
    One row per logical Asterisk call: the legs of int_call_legs merged.

    - started_at: the earliest leg start.
    - direction (from the origin leg, the leg that started the call):
      context `inbound` -> inbound; else a call placed by an internal phone (caller side
      internal) or in an `internal` context -> internal when it dialled an internal number,
      outbound otherwise; else (an external caller in an unknown context) inbound.
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
with

legs as (
    select * from {{ ref('int_call_legs') }}
),

origin as (
    select *
    from legs
    where legs.is_origin_leg
),

first_answer as (
    select
        call_id,
        callee_extension,
        caller_extension
    from (
        select
            legs.call_id,
            legs.callee_extension,
            legs.caller_extension,
            row_number() over (
                partition by legs.call_id
                order by legs.answered_at, legs.started_at, legs.leg_number
            ) as answer_rank
        from legs
        where legs.is_answered
    ) as answered_legs
    where answer_rank = 1
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
        -- one extension rang when the least and the greatest are the same (a min/max pair
        -- rather than count(distinct ...): no per-group set of values to hold in memory)
        min(case when legs.callee_is_internal then legs.callee_extension end) as rung_extension,
        max(case when legs.callee_is_internal then legs.callee_extension end) as rung_extension_last,
        count(*) as legs,
        min(legs.merge_rule) as merge_rule
    from legs
    group by legs.call_id
),

directed as (
    select
        aggregated.*,
        origin.call_key,
        origin.dcontext,
        origin.context_type,
        origin.caller_number,
        origin.caller_e164,
        origin.callee_number,
        origin.callee_e164,
        origin.caller_extension as origin_caller_extension,
        origin.dialled_extension as origin_dialled_extension,
        case
            when origin.context_type = 'inbound' then 'inbound'
            when origin.caller_is_internal or origin.context_type = 'internal' then
                case when origin.callee_is_internal then 'internal' else 'outbound' end
            else 'inbound'
        end as direction,
        case
            when aggregated.any_answered = 1 then 'answered'
            when aggregated.any_no_answer = 1 then 'missed'
            when aggregated.any_busy = 1 then 'busy'
            else 'failed'
        end as status
    from aggregated
    inner join origin
        on origin.call_id = aggregated.call_id
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
            when directed.direction = 'inbound' then coalesce(
                first_answer.callee_extension,
                case when directed.rung_extension = directed.rung_extension_last then directed.rung_extension end,
                directed.origin_dialled_extension
            )
            else directed.origin_caller_extension
        end as extension,
        case
            when directed.status = 'answered' then coalesce(
                {{ seconds_between('directed.started_at', 'directed.answered_at') }},
                directed.max_duration_seconds - directed.max_billsec_seconds
            )
            else coalesce(
                {{ seconds_between('directed.started_at', 'directed.ended_at') }},
                directed.max_duration_seconds
            )
        end as wait_seconds,
        case
            when directed.status = 'answered' then coalesce(
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
    left join first_answer
        on first_answer.call_id = directed.call_id
)

select * from final
