with

source as (
    select * from {{ source('salesforce', 'salesforce__opportunity_line_item') }}
),

renamed as (
    select
        {{ sf_id15('id') }} as line_item_id,
        {{ sf_id15('opportunity_id') }} as opportunity_id,
        {{ sf_id15('product2_id') }} as product_id,
        quantity as quantity,
        unit_price as unit_price,
        total_price as total_price,
        {{ lineage_columns() }}
    from source
),

ranked as (
    select
        renamed.*,
        row_number() over (
            partition by line_item_id
            order by _loaded_at desc, _line desc
        ) as _version_rank
    from renamed
),

final as (
    select
        line_item_id,
        opportunity_id,
        product_id,
        quantity,
        unit_price,
        total_price,
        _source_file,
        _line,
        _file_sha256,
        _load_id,
        _loaded_at
    from ranked
    where _version_rank = 1
)

select * from final
