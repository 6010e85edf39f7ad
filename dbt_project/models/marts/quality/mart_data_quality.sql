{#
    Load × source × raw table: what the ingestion read, loaded and quarantined (from the
    load manifest and the quarantine), and what staging found in the loaded rows
    (duplicates merged, deleted records, incomplete rows, stages outside the pipeline
    configuration), with the freshness of the data. Loads present in the raw tables but
    missing from the manifest are listed too (manifest figures null). Duplicates found per
    rule (int_duplicate_counts: customers sharing an INN / phone / e-mail within and
    across systems, deals exported twice, files delivered twice, multi-leg calls) are
    columns; a load that only redelivered files of a table has a row for it too.
    unparsed_values counts the values of the load that a model could not convert
    (int_unparsed_values); deals_without_rate the deals (by the load of their latest row)
    with an amount in a currency no rate converts to the reporting currency (int_deals:
    amount null, amount_original kept).
#}
{#- int_duplicate_counts' rules -> the column of this mart that counts them -#}
{%- set duplicate_rules = {
    'customer_inn_within_system': 'dup_customer_inn_within_system',
    'customer_inn_across_systems': 'dup_customer_inn_across_systems',
    'customer_phone_within_system': 'dup_customer_phone_within_system',
    'customer_phone_across_systems': 'dup_customer_phone_across_systems',
    'customer_email_within_system': 'dup_customer_email_within_system',
    'customer_email_across_systems': 'dup_customer_email_across_systems',
    'deal_exported_twice': 'deals_exported_twice',
    'file_delivered_twice': 'files_delivered_twice',
    'multi_leg_call': 'multi_leg_calls',
} -%}

with

manifest as (
    select * from {{ ref('stg_ingestion__load_manifest') }}
),

quarantine as (
    select * from {{ ref('stg_ingestion__quarantine') }}
),

load_counts as (
    select * from {{ ref('int_raw_load_counts') }}
),

duplicate_counts as (
    select * from {{ ref('int_duplicate_counts') }}
),

deals_without_rate as (
    select
        load_id,
        case source_system
            when 'salesforce' then 'salesforce__opportunity'
            else 'bitrix__deal_snapshot'
        end as table_name,
        count(*) as deals_without_rate
    from {{ ref('int_deals') }}
    where
        amount_rate_source = 'none'
        and amount_original is not null
        and load_id is not null
    group by
        load_id,
        source_system
),

unparsed_totals as (
    select
        load_id,
        table_name,
        sum(unparsed_count) as unparsed_values
    from {{ ref('int_unparsed_values') }}
    where load_id is not null
    group by
        load_id,
        table_name
),

duplicate_totals as (
    select
        {%- for rule, column in duplicate_rules.items() %}
            sum(case when rule = '{{ rule }}' then duplicates else 0 end) as {{ column }},
        {%- endfor %}
        load_id,
        table_name
    from duplicate_counts
    group by
        load_id,
        table_name
),

check_results as (
    select * from {{ ref('stg_ingestion__check_results') }}
),

latest_checks as (
    -- the latest outcome of each check of a load (a load is re-checked by later runs)
    select
        load_id,
        table_name,
        check_name,
        severity,
        passed
    from (
        select
            check_results.*,
            row_number() over (
                partition by check_results.load_id, check_results.table_name, check_results.check_name
                order by check_results.checked_at desc
            ) as recency
        from check_results
        where check_results.layer = 'raw'
    ) as ranked
    where recency = 1
),

check_totals as (
    select
        load_id,
        table_name,
        count(*) as checks_run,
        sum(case when not passed then 1 else 0 end) as failed_checks,
        sum(case when not passed and severity = 'blocking' then 1 else 0 end) as failed_blocking_checks,
        {{ dbt.listagg("case when not passed then check_name end", "', '", "order by check_name") }}
            as failed_check_names
    from latest_checks
    group by
        load_id,
        table_name
),

manifest_totals as (
    select
        manifest.load_id,
        manifest.source_system,
        manifest.table_name,
        max(manifest.loaded_at) as loaded_at,
        sum(manifest.rows_read) as rows_read,
        sum(manifest.rows_loaded) as rows_loaded,
        sum(manifest.rows_quarantined) as rows_quarantined,
        max(manifest.freshness_at) as freshness_at,
        count(*) as files
    from manifest
    group by
        manifest.load_id,
        manifest.source_system,
        manifest.table_name
),

quarantine_reasons as (
    select
        load_id,
        table_name,
        {%- set reason_with_count = "reason || ' (' || cast(rows_with_reason as " ~ dbt.type_string() ~ ") || ')'" %}
        {{ dbt.listagg(reason_with_count, "'; '", "order by rows_with_reason desc, reason") }}
            as quarantine_reasons
    from (
        select
            quarantine.load_id,
            quarantine.table_name,
            coalesce(quarantine.reason_rule, 'unknown') as reason,
            count(*) as rows_with_reason
        from quarantine
        group by
            quarantine.load_id,
            quarantine.table_name,
            coalesce(quarantine.reason_rule, 'unknown')
    ) as reason_counts
    group by
        load_id,
        table_name
),

counted as (
    select
        coalesce(manifest_totals.load_id, load_counts.load_id) as load_id,
        coalesce(manifest_totals.loaded_at, load_counts.loaded_at) as loaded_at,
        coalesce(manifest_totals.source_system, load_counts.source_system) as source,
        coalesce(manifest_totals.table_name, load_counts.table_name) as table_name,
        manifest_totals.rows_read,
        manifest_totals.rows_loaded,
        manifest_totals.rows_quarantined,
        coalesce(load_counts.duplicates_merged, 0) as duplicates_merged,
        coalesce(load_counts.incomplete_rows, 0) as incomplete_rows,
        manifest_totals.freshness_at,
        coalesce(load_counts.deleted_rows, 0) as deleted_rows,
        coalesce(load_counts.unknown_stage_rows, 0) as unknown_stage_rows,
        coalesce(load_counts.raw_rows, 0) as raw_rows,
        coalesce(load_counts.staged_rows, 0) as staged_rows,
        manifest_totals.files
    from manifest_totals
    full outer join load_counts
        on
            manifest_totals.load_id = load_counts.load_id
            and manifest_totals.table_name = load_counts.table_name
),

joined as (
    select
        coalesce(counted.load_id, duplicate_totals.load_id) as load_id,
        counted.loaded_at,
        coalesce(counted.source, {{ dbt.split_part('duplicate_totals.table_name', "'__'", 1) }}) as source,
        coalesce(counted.table_name, duplicate_totals.table_name) as table_name,
        counted.rows_read,
        counted.rows_loaded,
        counted.rows_quarantined,
        coalesce(counted.duplicates_merged, 0) as duplicates_merged,
        coalesce(counted.incomplete_rows, 0) as incomplete_rows,
        counted.freshness_at,
        coalesce(counted.deleted_rows, 0) as deleted_rows,
        coalesce(counted.unknown_stage_rows, 0) as unknown_stage_rows,
        coalesce(counted.raw_rows, 0) as raw_rows,
        coalesce(counted.staged_rows, 0) as staged_rows,
        {%- for column in duplicate_rules.values() %}
            coalesce(duplicate_totals.{{ column }}, 0) as {{ column }},
        {%- endfor %}
        counted.files
    from counted
    full outer join duplicate_totals
        on
            counted.load_id = duplicate_totals.load_id
            and counted.table_name = duplicate_totals.table_name
),

final as (
    select
        cast(joined.load_id as {{ dbt.type_string() }}) as load_id,
        cast(joined.loaded_at as timestamp) as loaded_at,
        cast(joined.source as {{ dbt.type_string() }}) as source,
        cast(joined.table_name as {{ dbt.type_string() }}) as table_name,
        cast(joined.rows_read as bigint) as rows_read,
        cast(joined.rows_loaded as bigint) as rows_loaded,
        cast(joined.rows_quarantined as bigint) as rows_quarantined,
        cast(joined.duplicates_merged as bigint) as duplicates_merged,
        cast(joined.incomplete_rows as bigint) as incomplete_rows,
        cast(joined.freshness_at as timestamp) as freshness_at,
        cast(joined.deleted_rows as bigint) as deleted_rows,
        cast(joined.unknown_stage_rows as bigint) as unknown_stage_rows,
        cast(joined.raw_rows as bigint) as raw_rows,
        cast(joined.staged_rows as bigint) as staged_rows,
        cast(joined.files as bigint) as files,
        cast(quarantine_reasons.quarantine_reasons as {{ dbt.type_string() }}) as quarantine_reasons,
        cast(coalesce(check_totals.checks_run, 0) as bigint) as checks_run,
        cast(coalesce(check_totals.failed_checks, 0) as bigint) as failed_checks,
        cast(coalesce(check_totals.failed_blocking_checks, 0) as bigint) as failed_blocking_checks,
        cast(check_totals.failed_check_names as {{ dbt.type_string() }}) as failed_check_names,
        {%- for column in duplicate_rules.values() %}
            cast(joined.{{ column }} as bigint) as {{ column }},
        {%- endfor %}
        cast(coalesce(unparsed_totals.unparsed_values, 0) as bigint) as unparsed_values,
        cast(coalesce(deals_without_rate.deals_without_rate, 0) as bigint) as deals_without_rate
    from joined
    left join quarantine_reasons
        on
            joined.load_id = quarantine_reasons.load_id
            and joined.table_name = quarantine_reasons.table_name
    left join check_totals
        on
            joined.load_id = check_totals.load_id
            and joined.table_name = check_totals.table_name
    left join unparsed_totals
        on
            joined.load_id = unparsed_totals.load_id
            and joined.table_name = unparsed_totals.table_name
    left join deals_without_rate
        on
            joined.load_id = deals_without_rate.load_id
            and joined.table_name = deals_without_rate.table_name
)

select * from final
