{# Unit cost of a product, valid from a date (until the next valid_from). #}
with

source as (
    select * from {{ source('onec', 'onec__product_cost') }}
),

renamed as (
    select
        {{ clean_text('product_code') }} as product_code,
        unit_cost,
        valid_from,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', ['product_code', 'valid_from']) }}
),

final as (
    select
        product_code,
        unit_cost,
        valid_from,
        {{ lineage_columns() }}
    from latest
)

select * from final
