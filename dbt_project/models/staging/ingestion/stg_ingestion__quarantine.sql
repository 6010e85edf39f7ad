with

source as (
    select * from {{ source('ingestion', 'quarantine') }}
),

final as (
    select
        load_id,
        source_system,
        entity,
        source_system || '__' || entity as table_name,
        source_file,
        file_sha256,
        line,
        raw_text,
        {{ clean_text('reason') }} as reason,
        -- the reason without the offending value, for counting by rule
        {{ clean_text(regexp_replace_all('reason', "''[^'']*''", "''…''")) }} as reason_rule,
        quarantined_at
    from source
)

select * from final
