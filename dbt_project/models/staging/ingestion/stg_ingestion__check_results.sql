with

source as (
    select * from {{ source('ingestion', 'check_results') }}
),

final as (
    select
        run_id as run_id,
        checked_at as checked_at,
        layer as layer,
        source_system as source_system,
        table_name as table_name,
        load_id as load_id,
        check_name as check_name,
        severity as severity,
        passed as passed,
        unexpected_count as unexpected_count
    from source
)

select * from final
