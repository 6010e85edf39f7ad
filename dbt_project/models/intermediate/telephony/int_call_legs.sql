{#
    One row per Asterisk CDR record (a call leg), with the logical call it belongs to and
    what each side of the leg is.

    Legs -> calls (call_key):
    - 21-field layout (Asterisk 1.8+): `linkedid` names the call; every leg with the same
      linkedid is one call.
    - 18-field layout (no linkedid): legs of one call share the caller and start within a
      few seconds of each other, and their uniqueids (`<epoch>.<counter>`) carry epochs
      as close. Per caller (E.164 number, else the raw src / clid number; for an internal
      caller, per caller and number dialled, since one phone may dial two numbers within
      seconds), legs ordered by
      start form one call while each starts at most var cdr_leg_merge_seconds (default 5)
      after the previous one and its uniqueid epoch is as close; the call is named after
      its first leg's uniqueid. A leg without any caller is a call of its own.

    Sides of a leg:
    - caller_is_internal: the calling side is one of our phones — src (or the clid number)
      is an internal number (is_internal_number: 2–6 digits) or an extension of
      extensions.csv, or the channel's peer is (`SIP/101-…`), and src is not an E.164
      number, and the channel is not a trunk (pbx_contexts rows of field `channel`: a
      6-digit city number arriving on `PJSIP/trunk-…` is external).
    - callee_is_internal: dst is an internal number / extension (a queue, a ring group,
      an extension), or dstchannel's peer is, and dst is not an E.164 number, and
      dstchannel is not a trunk (pbx_contexts rows of field `dstchannel`).
    - callee_is_service: dst is a dialplan step, not a number dialled (pbx_contexts rows
      of field `dst`: IVR `s`, `t`, a menu digit); a call to it is never outbound.
    - caller_extension / callee_extension: the internal number of that side — the
      channel peer when internal (the phone that actually rang or dialled), else
      src / dst. dialled_extension: dst when it is internal (the extension, queue or
      ring group the caller dialled).
    - context_type: `inbound` / `internal` from seed pbx_contexts (rows of field
      `dcontext`), null for a context not configured.
    - is_origin_leg: the leg that started the call — the leg whose uniqueid is the
      linkedid, else the earliest (start, uniqueid epoch, counter).
#}
{%- set merge_seconds = var('cdr_leg_merge_seconds', 5) -%}
with

cdr as (
    select * from {{ ref('stg_asterisk__cdr') }}
),

extensions as (
    select * from {{ ref('stg_asterisk__extension') }}
),

contexts as (
    select * from {{ ref('pbx_contexts') }}
),

asterisk_contexts as (
    select
        lower(trim(contexts.context)) as context_key,
        min(contexts.context_type) as context_type
    from contexts
    where
        lower(trim(contexts.pbx)) = 'asterisk'
        and coalesce(lower(trim(contexts.field)), 'dcontext') = 'dcontext'
    group by lower(trim(contexts.context))
),

asterisk_patterns as (
    select
        lower(trim(contexts.field)) as field,
        lower(trim(contexts.context)) as pattern,
        lower(trim(contexts.context_type)) as context_type
    from contexts
    where
        lower(trim(contexts.pbx)) = 'asterisk'
        and lower(trim(contexts.field)) in ('channel', 'dstchannel', 'dst')
),

-- the technology and peer of each channel (`pjsip/trunk`): few distinct values, matched
-- against the trunk patterns once each
channel_peers as (
    select distinct
        'channel' as field,
        lower({{ dbt.split_part('cdr.channel', "'/'", 1) }} || '/' || coalesce(cdr.channel_endpoint, '')) as peer
    from cdr
    where cdr.channel is not null
    union
    select distinct
        'dstchannel' as field,
        lower({{ dbt.split_part('cdr.dstchannel', "'/'", 1) }} || '/' || coalesce(cdr.dstchannel_endpoint, '')) as peer
    from cdr
    where cdr.dstchannel is not null
),

trunk_peers as (
    select distinct
        channel_peers.field,
        channel_peers.peer
    from channel_peers
    inner join asterisk_patterns
        on
            channel_peers.field = asterisk_patterns.field
            and asterisk_patterns.context_type = 'trunk'
            and channel_peers.peer like asterisk_patterns.pattern
),

-- destinations that are dialplan steps (IVR `s`, `t`, a menu digit); numbers in E.164
-- form never are, so only the other destinations are matched
service_destinations as (
    select distinct destinations.dst_key
    from (
        select distinct lower(trim(cdr.dst)) as dst_key
        from cdr
        where cdr.dst is not null and cdr.dst_e164 is null
    ) as destinations
    inner join asterisk_patterns
        on
            asterisk_patterns.field = 'dst'
            and asterisk_patterns.context_type = 'service'
            and destinations.dst_key like asterisk_patterns.pattern
),

sided as (
    select
        cdr.uniqueid,
        cdr.linkedid,
        cdr.sequence,
        cdr.src,
        cdr.dst,
        cdr.clid,
        cdr.dcontext,
        cdr.channel,
        cdr.dstchannel,
        cdr.started_at,
        cdr.answered_at,
        cdr.ended_at,
        cdr.duration_seconds,
        cdr.billsec_seconds,
        cdr.disposition,
        cdr._source_file,
        cdr._line,
        {{ uniqueid_epoch('cdr.uniqueid') }} as uniqueid_epoch,
        {{ uniqueid_counter('cdr.uniqueid') }} as uniqueid_counter,
        coalesce(cdr.src_e164, cdr.clid_e164) as caller_e164,
        coalesce(cdr.src, cdr.clid_number) as caller_number,
        cdr.dst_e164 as callee_e164,
        cdr.dst as callee_number,
        case
            when caller_trunk.peer is not null then null
            when {{ is_internal_number('cdr.channel_endpoint') }} or channel_ext.extension is not null
                then cdr.channel_endpoint
            when {{ is_internal_number('cdr.src') }} or src_ext.extension is not null
                then cdr.src
            when {{ is_internal_number('cdr.clid_number') }} or clid_ext.extension is not null
                then cdr.clid_number
        end as caller_internal_number,
        case
            when callee_trunk.peer is not null then null
            when {{ is_internal_number('cdr.dstchannel_endpoint') }} or dstchannel_ext.extension is not null
                then cdr.dstchannel_endpoint
            when {{ is_internal_number('cdr.dst') }} or dst_ext.extension is not null
                then cdr.dst
        end as callee_internal_number,
        case
            when callee_trunk.peer is not null then null
            when {{ is_internal_number('cdr.dst') }} or dst_ext.extension is not null then cdr.dst
        end as dialled_internal_number,
        service_destinations.dst_key is not null as callee_is_service,
        asterisk_contexts.context_type
    from cdr
    left join extensions as channel_ext
        on cdr.channel_endpoint = channel_ext.extension
    left join extensions as src_ext
        on cdr.src = src_ext.extension
    left join extensions as clid_ext
        on cdr.clid_number = clid_ext.extension
    left join extensions as dstchannel_ext
        on cdr.dstchannel_endpoint = dstchannel_ext.extension
    left join extensions as dst_ext
        on cdr.dst = dst_ext.extension
    left join asterisk_contexts
        on asterisk_contexts.context_key = lower(cdr.dcontext)
    left join trunk_peers as caller_trunk
        on
            caller_trunk.field = 'channel'
            and caller_trunk.peer
            = lower({{ dbt.split_part('cdr.channel', "'/'", 1) }} || '/' || coalesce(cdr.channel_endpoint, ''))
    left join trunk_peers as callee_trunk
        on
            callee_trunk.field = 'dstchannel'
            and callee_trunk.peer
            = lower({{ dbt.split_part('cdr.dstchannel', "'/'", 1) }} || '/' || coalesce(cdr.dstchannel_endpoint, ''))
    left join service_destinations
        on service_destinations.dst_key = lower(trim(cdr.dst))
),

classified as (
    select
        sided.*,
        sided.caller_internal_number is not null and sided.caller_e164 is null as caller_is_internal,
        sided.callee_internal_number is not null and sided.callee_e164 is null as callee_is_internal,
        -- an internal phone places one call per number dialled: its legs also share dst
        coalesce(sided.caller_e164, sided.caller_number, sided.clid)
        || case
            when sided.caller_internal_number is not null and sided.caller_e164 is null
                then '>' || coalesce(sided.callee_e164, sided.callee_number, '')
            else ''
        end as caller_key
    from sided
),

-- 21-field layout: the linkedid names the call
linked as (
    select
        classified.*,
        0 as starts_call,
        cast(null as bigint) as island_number,
        classified.linkedid as call_key,
        'linkedid' as merge_rule
    from classified
    where classified.linkedid is not null
),

-- 18-field layout: islands of legs of the same caller starting close together (only the
-- legs without a linkedid go through these windows)
unlinked as (
    select *
    from classified
    where linkedid is null
),

islands as (
    select
        unlinked.*,
        case
            when unlinked.caller_key is null then 1
            when lag(unlinked.started_at) over leg_order is null then 1
            when
                {{ seconds_between('lag(unlinked.started_at) over leg_order', 'unlinked.started_at') }}
                > {{ merge_seconds }}
                then 1
            when abs(unlinked.uniqueid_epoch - lag(unlinked.uniqueid_epoch) over leg_order) > {{ merge_seconds }} then 1
            else 0
        end as starts_call
    from unlinked
    window leg_order as (
        partition by unlinked.caller_key
        order by unlinked.started_at, unlinked.uniqueid_epoch, unlinked.uniqueid_counter, unlinked.uniqueid
    )
),

island_numbers as (
    select
        islands.*,
        sum(islands.starts_call) over (
            partition by islands.caller_key
            order by islands.started_at, islands.uniqueid_epoch, islands.uniqueid_counter, islands.uniqueid
            rows between unbounded preceding and current row
        ) as island_number
    from islands
),

merged as (
    select
        island_numbers.*,
        first_value(island_numbers.uniqueid) over (
            partition by
                coalesce(island_numbers.caller_key, island_numbers.uniqueid),
                island_numbers.island_number
            order by
                island_numbers.started_at,
                island_numbers.uniqueid_epoch,
                island_numbers.uniqueid_counter,
                island_numbers.uniqueid
            rows between unbounded preceding and unbounded following
        ) as call_key,
        'caller_and_start' as merge_rule
    from island_numbers
),

keyed as (
    select * from linked
    union all
    select * from merged
),

ordered as (
    select
        keyed.*,
        row_number() over (
            partition by keyed.call_key
            order by
                case when keyed.uniqueid = keyed.linkedid then 0 else 1 end,
                keyed.started_at,
                keyed.uniqueid_epoch,
                keyed.uniqueid_counter,
                keyed.sequence,
                keyed.uniqueid
        ) as leg_number
    from keyed
),

final as (
    select
        'asterisk:' || call_key as call_id,
        call_key,
        merge_rule,
        leg_number,
        leg_number = 1 as is_origin_leg,
        uniqueid,
        linkedid,
        sequence,
        started_at,
        answered_at,
        coalesce(ended_at, {{ dbt.dateadd('second', 'duration_seconds', 'started_at') }}) as ended_at,
        duration_seconds,
        billsec_seconds,
        disposition,
        disposition = 'ANSWERED' as is_answered,
        dcontext,
        context_type,
        channel,
        dstchannel,
        src,
        dst,
        caller_number,
        caller_e164,
        callee_number,
        callee_e164,
        caller_is_internal,
        callee_is_internal,
        callee_is_service and not callee_is_internal as callee_is_service,
        case when caller_is_internal then caller_internal_number end as caller_extension,
        case when callee_is_internal then callee_internal_number end as callee_extension,
        case when callee_is_internal then dialled_internal_number end as dialled_extension,
        _source_file,
        _line
    from ordered
)

select * from final
