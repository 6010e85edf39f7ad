with

source as (
    select * from {{ source('ingestion', 'check_results') }}
),

final as (
    select
        run_id,
        checked_at,
        layer,
        source_system,
        table_name,
        load_id,
        check_name,
        severity,
        passed,
        unexpected_count
    from source
)

select * from final
