{#
    One row per expense line. The register has no key: exact duplicates (same date, item,
    channel, amount and counterparty) are merged, keeping the latest load.
#}
with

source as (
    select * from {{ source('onec', 'onec__expense') }}
),

renamed as (
    select
        spent_on,
        {{ clean_text('cost_item') }} as cost_item,
        {{ clean_text('channel') }} as channel_raw,
        amount,
        {{ clean_text('counterparty') }} as counterparty_name,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', [
        'spent_on', 'cost_item', 'channel_raw', 'amount', 'counterparty_name',
    ]) }}
),

final as (
    select
        spent_on,
        cost_item,
        channel_raw,
        amount,
        counterparty_name,
        {{ lineage_columns() }}
    from latest
)

select * from final
