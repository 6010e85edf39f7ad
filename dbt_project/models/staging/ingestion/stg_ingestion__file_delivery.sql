with

source as (
    select * from {{ source('ingestion', 'file_delivery') }}
),

final as (
    select
        load_id as load_id,
        seen_at as seen_at,
        source_system as source_system,
        source_file as source_file,
        file_sha256 as file_sha256,
        duplicate_of as duplicate_of
    from source
)

select * from final
