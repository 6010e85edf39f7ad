with

source as (
    select * from {{ source('salesforce', 'salesforce__opportunity_line_item') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as line_item_id,
        {{ sf_id15('opportunity_id') }} as opportunity_id,
        {{ sf_id15('product2_id') }} as product_id,
        quantity,
        unit_price,
        total_price,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'line_item_id') }}
),

final as (
    select
        line_item_id,
        opportunity_id,
        product_id,
        quantity,
        unit_price,
        total_price,
        {{ lineage_columns() }}
    from latest
)

select * from final
