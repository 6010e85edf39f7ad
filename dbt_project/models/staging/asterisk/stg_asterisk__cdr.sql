{#
    One row per CDR record (a call leg). `clid` is `"name" <number>` (or a bare number):
    it is split into caller name and number. Exact duplicate records (a Master.csv
    delivered again with more rows, a line repeated) are merged; legs are merged into
    calls downstream, not here. Times are PBX local time.
#}
with

source as (
    select * from {{ source('asterisk', 'asterisk__cdr') }}
),

renamed as (
    select
        {{ clean_text('accountcode') }} as accountcode,
        {{ clean_text('src') }} as src,
        {{ clean_text('dst') }} as dst,
        {{ clean_text('dcontext') }} as dcontext,
        {{ clean_text('clid') }} as clid,
        nullif(regexp_extract(clid, '"([^"]*)"', 1), '') as clid_name,
        coalesce(
            nullif(trim(regexp_extract(clid, '<([^>]*)>', 1)), ''),
            case when clid not like '%<%' then nullif(trim(replace(clid, '"', '')), '') end
        ) as clid_number,
        {{ clean_text('channel') }} as channel,
        nullif(regexp_extract(channel, '^[A-Za-z0-9]+/([^-@/]+)', 1), '') as channel_endpoint,
        {{ clean_text('dstchannel') }} as dstchannel,
        nullif(regexp_extract(dstchannel, '^[A-Za-z0-9]+/([^-@/]+)', 1), '') as dstchannel_endpoint,
        {{ clean_text('lastapp') }} as lastapp,
        {{ clean_text('lastdata') }} as lastdata,
        start_time as started_at,
        answer_time as answered_at,
        end_time as ended_at,
        duration as duration_seconds,
        billsec as billsec_seconds,
        upper({{ clean_text('disposition') }}) as disposition,
        {{ clean_text('amaflags') }} as amaflags,
        {{ clean_text('uniqueid') }} as uniqueid,
        {{ clean_text('userfield') }} as userfield,
        {{ clean_text('peeraccount') }} as peeraccount,
        {{ clean_text('linkedid') }} as linkedid,
        sequence,
        {{ lineage_columns() }}
    from source
),

with_numbers as (
    select
        renamed.*,
        {{ normalize_phone('clid_number') }} as clid_e164,
        {{ normalize_phone('src') }} as src_e164,
        {{ normalize_phone('dst') }} as dst_e164
    from renamed
),

latest as (
    {{ latest_version('with_numbers', [
        'uniqueid', 'started_at', 'answered_at', 'ended_at', 'src', 'dst', 'dcontext', 'clid',
        'channel', 'dstchannel', 'lastapp', 'lastdata', 'duration_seconds', 'billsec_seconds',
        'disposition', 'linkedid', 'sequence',
    ]) }}
),

final as (
    select
        uniqueid,
        linkedid,
        sequence,
        accountcode,
        src,
        src_e164,
        dst,
        dst_e164,
        dcontext,
        clid,
        clid_name,
        clid_number,
        clid_e164,
        channel,
        channel_endpoint,
        dstchannel,
        dstchannel_endpoint,
        lastapp,
        lastdata,
        started_at,
        answered_at,
        ended_at,
        duration_seconds,
        billsec_seconds,
        disposition,
        amaflags,
        userfield,
        peeraccount,
        {{ lineage_columns() }}
    from latest
)

select * from final
