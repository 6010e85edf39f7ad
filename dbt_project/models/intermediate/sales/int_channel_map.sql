{#
    Every distinct raw lead source and campaign type seen in the CRMs -> channel, through
    the `channel_mapping` patterns (lowest priority wins). A raw value that matches no
    pattern maps to `other`. Consumers join on (source_type, raw_key) where raw_key is
    normalize_key(raw value).
#}
with

sf_opportunities as (
    select * from {{ ref('stg_salesforce__opportunity') }}
),

sf_leads as (
    select * from {{ ref('stg_salesforce__lead') }}
),

sf_contacts as (
    select * from {{ ref('stg_salesforce__contact') }}
),

sf_campaigns as (
    select * from {{ ref('stg_salesforce__campaign') }}
),

bx_deal_snapshots as (
    select * from {{ ref('stg_bitrix__deal_snapshot') }}
),

bx_leads as (
    select * from {{ ref('stg_bitrix__lead') }}
),

mapping as (
    select * from {{ ref('channel_mapping') }}
),

raw_values as (
    select
        'lead_source' as source_type,
        sf_opportunities.lead_source as raw_value
    from sf_opportunities
    union all
    select
        'lead_source' as source_type,
        sf_leads.lead_source as raw_value
    from sf_leads
    union all
    select
        'lead_source' as source_type,
        sf_contacts.lead_source as raw_value
    from sf_contacts
    union all
    select
        'lead_source' as source_type,
        bx_deal_snapshots.lead_source as raw_value
    from bx_deal_snapshots
    union all
    select
        'lead_source' as source_type,
        bx_leads.lead_source as raw_value
    from bx_leads
    union all
    select
        'campaign_type' as source_type,
        sf_campaigns.campaign_type as raw_value
    from sf_campaigns
),

keyed as (
    select distinct
        source_type,
        {{ normalize_key('raw_value') }} as raw_key
    from raw_values
    where raw_value is not null
),

matched as (
    select
        keyed.source_type,
        keyed.raw_key,
        mapping.channel,
        mapping.pattern,
        row_number() over (
            partition by keyed.source_type, keyed.raw_key
            order by mapping.priority, mapping.pattern
        ) as match_rank
    from keyed
    left join mapping
        on
            keyed.source_type = mapping.source_type
            and keyed.raw_key like lower(mapping.pattern)
),

final as (
    select
        source_type,
        raw_key,
        coalesce(channel, 'other') as channel,
        pattern as matched_pattern
    from matched
    where
        match_rank = 1
        and raw_key is not null
)

select * from final
