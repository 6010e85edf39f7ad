{#
    Every distinct free-text loss reason (Salesforce Loss_Reason__c, Bitrix «Причина
    отказа») -> the configured reason list, through the `loss_reasons` patterns: the
    matching pattern with the lowest priority wins; text matching nothing is `other`.
#}
with

opportunities as (
    select * from {{ ref('stg_salesforce__opportunity') }}
),

deal_snapshots as (
    select * from {{ ref('stg_bitrix__deal_snapshot') }}
),

patterns as (
    select * from {{ ref('loss_reasons') }}
),

raw_reasons as (
    select opportunities.loss_reason as loss_reason_raw from opportunities
    union all
    select deal_snapshots.loss_reason as loss_reason_raw from deal_snapshots
),

keyed as (
    select distinct
        {{ normalize_key('loss_reason_raw') }} as loss_reason_key
    from raw_reasons
    where loss_reason_raw is not null
),

matched as (
    select
        keyed.loss_reason_key,
        patterns.loss_reason,
        patterns.pattern,
        row_number() over (
            partition by keyed.loss_reason_key
            order by patterns.priority, patterns.pattern
        ) as match_rank
    from keyed
    left join patterns
        on keyed.loss_reason_key like lower(patterns.pattern)
),

final as (
    select
        loss_reason_key,
        coalesce(loss_reason, 'other') as loss_reason,
        pattern as matched_pattern
    from matched
    where
        match_rank = 1
        and loss_reason_key is not null
)

select * from final
