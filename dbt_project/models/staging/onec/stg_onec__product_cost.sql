{# Unit cost of a product, valid from a date (until the next valid_from). #}
with

source as (
    select * from {{ source('onec', 'onec__product_cost') }}
),

renamed as (
    select
        {{ clean_text('product_code') }} as product_code,
        unit_cost as unit_cost,
        valid_from as valid_from,
        {{ lineage_columns() }}
    from source
),

ranked as (
    select
        renamed.*,
        row_number() over (
            partition by product_code, valid_from
            order by _loaded_at desc, _line desc
        ) as _version_rank
    from renamed
),

final as (
    select
        product_code,
        unit_cost,
        valid_from,
        _source_file,
        _line,
        _file_sha256,
        _load_id,
        _loaded_at
    from ranked
    where _version_rank = 1
)

select * from final
