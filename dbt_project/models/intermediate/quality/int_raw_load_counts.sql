{#
    Per load × raw table: rows in the raw table, rows kept by staging, rows of deleted
    records, incomplete rows and rows in a stage outside the configured pipeline.

    duplicates_merged = raw rows − staged rows − deleted rows, for that load: the rows
    staging dropped because they repeat a record (exact duplicate, or an older export of
    a record that a later row / load supersedes). A superseded row is counted against the
    load that brought the OLD version, so a load's count can grow when later loads
    re-export its records (Salesforce exports are full snapshots). A deleted record that
    is also superseded counts as deleted, not as a duplicate.

    incomplete_rows approximates "required field missing": the fields the ingestion
    requires are enforced there (quarantine), so here a row is incomplete when a key
    business field (listed per table below) is null.
#}
{%- set tables = [
    {'source': 'salesforce', 'table': 'user', 'model': 'stg_salesforce__user',
     'incomplete': 'name is null or email is null'},
    {'source': 'salesforce', 'table': 'account', 'model': 'stg_salesforce__account', 'deleted': true,
     'incomplete': 'name is null or owner_id is null'},
    {'source': 'salesforce', 'table': 'contact', 'model': 'stg_salesforce__contact', 'deleted': true,
     'incomplete': 'account_id is null or (email is null and phone is null and mobile_phone is null)'},
    {'source': 'salesforce', 'table': 'lead', 'model': 'stg_salesforce__lead', 'deleted': true,
     'incomplete': 'owner_id is null or (email is null and phone is null)'},
    {'source': 'salesforce', 'table': 'opportunity', 'model': 'stg_salesforce__opportunity', 'deleted': true,
     'incomplete': 'account_id is null or owner_id is null or amount is null or close_date is null',
     'stage': 'stage_name', 'pipeline': 'salesforce'},
    {'source': 'salesforce', 'table': 'opportunity_history', 'model': 'stg_salesforce__opportunity_history', 'deleted': true,
     'incomplete': 'close_date is null', 'stage': 'stage_name', 'pipeline': 'salesforce'},
    {'source': 'salesforce', 'table': 'opportunity_line_item', 'model': 'stg_salesforce__opportunity_line_item',
     'incomplete': 'product2_id is null or quantity is null or total_price is null'},
    {'source': 'salesforce', 'table': 'product', 'model': 'stg_salesforce__product',
     'incomplete': 'name is null'},
    {'source': 'salesforce', 'table': 'task', 'model': 'stg_salesforce__task',
     'incomplete': 'owner_id is null or created_date is null'},
    {'source': 'salesforce', 'table': 'campaign', 'model': 'stg_salesforce__campaign',
     'incomplete': 'name is null or type is null'},
    {'source': 'salesforce', 'table': 'currency_type', 'model': 'stg_salesforce__currency_type',
     'incomplete': 'is_corporate is null'},
    {'source': 'salesforce', 'table': 'opportunity_stage', 'model': 'stg_salesforce__opportunity_stage',
     'incomplete': 'sort_order is null or is_closed is null or is_won is null'},
    {'source': 'bitrix', 'table': 'deal_snapshot', 'model': 'stg_bitrix__deal_snapshot',
     'incomplete': 'responsible is null or amount is null or (company is null and inn is null)',
     'stage': 'stage', 'pipeline': 'bitrix'},
    {'source': 'bitrix', 'table': 'lead', 'model': 'stg_bitrix__lead',
     'incomplete': 'responsible is null or (work_phone is null and mobile_phone is null and work_email is null and private_email is null)'},
    {'source': 'asterisk', 'table': 'cdr', 'model': 'stg_asterisk__cdr',
     'incomplete': 'src is null or dst is null'},
    {'source': 'asterisk', 'table': 'extension', 'model': 'stg_asterisk__extension',
     'incomplete': 'user_id is null'},
    {'source': 'cloud_pbx', 'table': 'call', 'model': 'stg_cloud_pbx__call',
     'incomplete': 'direction is null or status is null or (caller is null and callee is null)'},
    {'source': 'onec', 'table': 'bank_payment', 'model': 'stg_onec__bank_payment',
     'incomplete': 'doc_number is null or payer_inn is null or purpose is null'},
    {'source': 'onec', 'table': 'bank_account_section', 'model': 'stg_onec__bank_account_section',
     'incomplete': 'opening_balance is null or closing_balance is null'},
    {'source': 'onec', 'table': 'invoice', 'model': 'stg_onec__invoice',
     'incomplete': 'counterparty_inn is null or due_on is null'},
    {'source': 'onec', 'table': 'expense', 'model': 'stg_onec__expense',
     'incomplete': 'cost_item is null'},
    {'source': 'onec', 'table': 'product_cost', 'model': 'stg_onec__product_cost',
     'incomplete': 'false'},
] -%}

with

pipeline_stages as (
    select * from {{ ref('int_pipeline_stages') }}
),

-- every label a stage is known by (its name, and its code where configured)
stage_labels as (
    {{ stage_labels('pipeline_stages') }}
),

{% for t in tables %}
    raw_{{ t.source }}__{{ t.table }} as (
        select
            '{{ t.source }}' as source_system,
            '{{ t.source }}__{{ t.table }}' as table_name,
            raw_rows._load_id as load_id,
            count(*) as raw_rows,
            max(raw_rows._loaded_at) as loaded_at,
            {% if t.deleted -%}
                sum(case when raw_rows.is_deleted then 1 else 0 end) as deleted_rows,
            {%- else -%}
                0 as deleted_rows,
            {%- endif %}
            sum(case when {{ t.incomplete }} then 1 else 0 end) as incomplete_rows,
            {% if t.stage -%}
                sum(case when raw_rows.{{ t.stage }} is not null and configured.stage is null then 1 else 0 end)
                    as unknown_stage_rows
            {%- else -%}
                0 as unknown_stage_rows
            {%- endif %}
        from {{ source(t.source, t.source ~ '__' ~ t.table) }} as raw_rows
        {% if t.stage -%}
            left join stage_labels as configured
                on
                    configured.pipeline = '{{ t.pipeline }}'
                    and configured.label_key = {{ normalize_key('raw_rows.' ~ t.stage) }}
        {%- endif %}
        group by raw_rows._load_id
    ),

    staged_{{ t.source }}__{{ t.table }} as (
        select
            '{{ t.source }}__{{ t.table }}' as table_name,
            staged_rows._load_id as load_id,
            count(*) as staged_rows
        from {{ ref(t.model) }} as staged_rows
        group by staged_rows._load_id
    ),

{% endfor %}
raw_counts as (
    {% for t in tables -%}
        select * from raw_{{ t.source }}__{{ t.table }}
        {% if not loop.last %}union all
        {% endif -%}
    {%- endfor %}
),

staged_counts as (
    {% for t in tables -%}
        select * from staged_{{ t.source }}__{{ t.table }}
        {% if not loop.last %}union all
        {% endif -%}
    {%- endfor %}
),

final as (
    select
        raw_counts.load_id,
        raw_counts.source_system,
        raw_counts.table_name,
        raw_counts.loaded_at,
        raw_counts.raw_rows,
        coalesce(staged_counts.staged_rows, 0) as staged_rows,
        raw_counts.deleted_rows,
        raw_counts.raw_rows - coalesce(staged_counts.staged_rows, 0) - raw_counts.deleted_rows as duplicates_merged,
        raw_counts.incomplete_rows,
        raw_counts.unknown_stage_rows
    from raw_counts
    left join staged_counts
        on
            raw_counts.load_id = staged_counts.load_id
            and raw_counts.table_name = staged_counts.table_name
)

select * from final
