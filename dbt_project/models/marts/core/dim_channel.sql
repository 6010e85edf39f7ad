{#
    One row per channel: every channel the mapping (seed channel_mapping, through
    int_channel_map) can produce, plus `other` (a raw source the mapping does not know)
    and `unknown` (no source at all), plus any channel listed in seed channel_groups.
    channel_group from seed channel_groups; `ungrouped` when the seed does not list it.
#}
with

channel_mapping as (
    select * from {{ ref('channel_mapping') }}
),

channel_groups as (
    select * from {{ ref('channel_groups') }}
),

channels as (
    select distinct channel_mapping.channel
    from channel_mapping
    where channel_mapping.channel is not null
    union
    select channel_groups.channel
    from channel_groups
    union
    select 'other' as channel
    union
    select 'unknown' as channel
),

mapped_channels as (
    select distinct channel_mapping.channel
    from channel_mapping
),

final as (
    select
        channels.channel,
        coalesce(channel_groups.channel_group, 'ungrouped') as channel_group,
        channel_groups.description,
        mapped_channels.channel is not null as is_mapped
    from channels
    left join channel_groups
        on channels.channel = channel_groups.channel
    left join mapped_channels
        on channels.channel = mapped_channels.channel
)

select * from final
