with

source as (
    select * from {{ source('ingestion', 'load_manifest') }}
),

final as (
    select
        load_id,
        loaded_at,
        source_system,
        entity,
        table_name,
        source_file,
        file_name,
        file_sha256,
        file_bytes,
        encoding as file_encoding,
        status as load_status,
        coalesce(rows_read, 0) as rows_read,
        coalesce(rows_loaded, 0) as rows_loaded,
        coalesce(rows_quarantined, 0) as rows_quarantined,
        freshness_at
    from source
)

select * from final
