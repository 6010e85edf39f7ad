with

source as (
    select * from {{ source('ingestion', 'file_delivery') }}
),

final as (
    select
        load_id,
        seen_at,
        source_system,
        source_file,
        file_sha256,
        duplicate_of
    from source
)

select * from final
