with

source as (
    select * from {{ source('salesforce', 'salesforce__product') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as product_id,
        {{ clean_text('name') }} as product_name,
        {{ clean_text('product_code') }} as product_code,
        {{ clean_text('family') }} as product_family,
        coalesce(is_active, true) as is_active,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'product_id') }}
),

final as (
    select
        product_id,
        product_name,
        product_code,
        product_family,
        is_active,
        {{ lineage_columns() }}
    from latest
)

select * from final
