{#
    Duplicates found, per load × raw table × rule (long form; mart_data_quality pivots it):

    customer_<inn|phone|email>_within_system
        customer records of the load (Salesforce accounts and leads, Bitrix deal companies
        and leads, 1C counterparties) whose checksum-valid INN / E.164 phone / lower-cased
        e-mail is also carried by ANOTHER record of the same system (two Salesforce
        accounts with one INN). 1C counterparties are keyed by their INN, so the INN rule
        never finds one within 1C.
    customer_<inn|phone|email>_across_systems
        customer records of the load whose value also appears in another system (the
        same INN in Salesforce and in 1C): what identity resolution merges.
    deal_exported_twice
        deal rows of the load that repeat a deal already in the same file (an exact
        duplicate row, or the same deal Id with other values); staging keeps one.
    file_delivered_twice
        files of the load skipped because the same content had been loaded before (even
        under another name); raw.file_delivery lists them.
    multi_leg_call
        Asterisk calls whose origin leg came in this load and that merge several CDR rows
        (transfers, queue legs, forwarding).

    A customer record counts once per rule even when several of its values match; it is
    attributed to the load of its staged (latest) version. Only non-zero counts are rows.
#}
{#-
    The customer values compared, one entry per (raw table, rule, column): the staging
    relation, its record key, the value and which rows carry one. A table whose staging
    model keeps several rows per record (Bitrix deal snapshots) or none of its own (1C
    counterparties, keyed by INN) is grouped to one row per record and value, with the
    greatest load id among its rows (`group_by`).
-#}
{%- set bank_payer_is_customer = 'payer_inn_is_valid and ' ~ is_received_payment() -%}
{%- set customer_key_sources = [
    {'system': 'salesforce', 'table': 'salesforce__account', 'relation': 'accounts', 'record_id': 'account_id',
     'rule': 'inn', 'value': 'inn', 'where': 'inn_is_valid'},
    {'system': 'salesforce', 'table': 'salesforce__account', 'relation': 'accounts', 'record_id': 'account_id',
     'rule': 'phone', 'value': 'phone_e164', 'where': 'phone_e164 is not null'},
    {'system': 'salesforce', 'table': 'salesforce__lead', 'relation': 'sf_leads', 'record_id': 'lead_id',
     'rule': 'phone', 'value': 'phone_e164', 'where': 'phone_e164 is not null'},
    {'system': 'salesforce', 'table': 'salesforce__lead', 'relation': 'sf_leads', 'record_id': 'lead_id',
     'rule': 'email', 'value': 'email', 'where': 'email is not null'},
    {'system': 'bitrix', 'table': 'bitrix__deal_snapshot', 'relation': 'deal_snapshots', 'record_id': 'deal_id',
     'rule': 'inn', 'value': 'inn', 'where': 'inn_is_valid', 'group_by': 'deal_id, inn'},
    {'system': 'bitrix', 'table': 'bitrix__deal_snapshot', 'relation': 'deal_snapshots', 'record_id': 'deal_id',
     'rule': 'phone', 'value': 'phone_e164', 'where': 'phone_e164 is not null', 'group_by': 'deal_id, phone_e164'},
    {'system': 'bitrix', 'table': 'bitrix__deal_snapshot', 'relation': 'deal_snapshots', 'record_id': 'deal_id',
     'rule': 'email', 'value': 'email', 'where': 'email is not null', 'group_by': 'deal_id, email'},
    {'system': 'bitrix', 'table': 'bitrix__lead', 'relation': 'bx_leads', 'record_id': 'lead_id',
     'rule': 'phone', 'value': 'work_phone_e164', 'where': 'work_phone_e164 is not null'},
    {'system': 'bitrix', 'table': 'bitrix__lead', 'relation': 'bx_leads', 'record_id': 'lead_id',
     'rule': 'phone', 'value': 'mobile_phone_e164', 'where': 'mobile_phone_e164 is not null'},
    {'system': 'bitrix', 'table': 'bitrix__lead', 'relation': 'bx_leads', 'record_id': 'lead_id',
     'rule': 'email', 'value': 'work_email', 'where': 'work_email is not null'},
    {'system': 'bitrix', 'table': 'bitrix__lead', 'relation': 'bx_leads', 'record_id': 'lead_id',
     'rule': 'email', 'value': 'private_email', 'where': 'private_email is not null'},
    {'system': 'onec', 'table': 'onec__invoice', 'relation': 'invoices', 'record_id': "'inn:' || counterparty_inn",
     'rule': 'inn', 'value': 'counterparty_inn', 'where': 'counterparty_inn_is_valid', 'group_by': 'counterparty_inn'},
    {'system': 'onec', 'table': 'onec__bank_payment', 'relation': 'bank_payments', 'record_id': "'inn:' || payer_inn",
     'rule': 'inn', 'value': 'payer_inn', 'where': bank_payer_is_customer, 'group_by': 'payer_inn'},
] -%}

with

accounts as (
    select * from {{ ref('stg_salesforce__account') }}
),

sf_leads as (
    select * from {{ ref('stg_salesforce__lead') }}
),

deal_snapshots as (
    select * from {{ ref('stg_bitrix__deal_snapshot') }}
),

bx_leads as (
    select * from {{ ref('stg_bitrix__lead') }}
),

invoices as (
    select * from {{ ref('stg_onec__invoice') }}
),

bank_payments as (
    select * from {{ ref('stg_onec__bank_payment') }}
),

file_deliveries as (
    select * from {{ ref('stg_ingestion__file_delivery') }}
),

manifest as (
    select * from {{ ref('stg_ingestion__load_manifest') }}
),

call_legs as (
    select * from {{ ref('int_call_legs') }}
),

sf_opportunity_rows as (
    select * from {{ source('salesforce', 'salesforce__opportunity') }}
),

bx_deal_rows as (
    select * from {{ source('bitrix', 'bitrix__deal_snapshot') }}
),

-- one row per (record, rule, value) ---------------------------------------------------

customer_keys as (
    {%- for key in customer_key_sources %}
        select
            '{{ key.system }}' as system,
            '{{ key.table }}' as table_name,
            {{ 'max(_load_id)' if key.group_by else '_load_id' }} as load_id,
            {{ key.record_id }} as record_id,
            '{{ key.rule }}' as rule,
            {{ key.value }} as match_value
        from {{ key.relation }}
        where {{ key.where }}
        {%- if key.group_by %}
            group by {{ key.group_by }}
        {%- endif %}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

records_per_value as (
    select
        system,
        rule,
        match_value,
        count(distinct table_name || '|' || record_id) as records
    from customer_keys
    group by system, rule, match_value
),

systems_per_value as (
    select
        rule,
        match_value,
        count(distinct system) as systems
    from customer_keys
    group by rule, match_value
),

customer_duplicates as (
    select
        customer_keys.load_id,
        customer_keys.table_name,
        customer_keys.rule,
        count(distinct case when records_per_value.records > 1 then customer_keys.record_id end)
            as within_system,
        count(distinct case when systems_per_value.systems > 1 then customer_keys.record_id end)
            as across_systems
    from customer_keys
    inner join records_per_value
        on
            customer_keys.system = records_per_value.system
            and customer_keys.rule = records_per_value.rule
            and customer_keys.match_value = records_per_value.match_value
    inner join systems_per_value
        on
            customer_keys.rule = systems_per_value.rule
            and customer_keys.match_value = systems_per_value.match_value
    group by customer_keys.load_id, customer_keys.table_name, customer_keys.rule
),

-- deals exported twice in one file ------------------------------------------------------

deals_twice as (
    select
        _load_id as load_id,
        'salesforce__opportunity' as table_name,
        count(*) - count(distinct _file_sha256 || '|' || coalesce(substr(id, 1, 15), '')) as duplicates
    from sf_opportunity_rows
    group by _load_id
    union all
    select
        _load_id,
        'bitrix__deal_snapshot' as table_name,
        count(*) - count(distinct _file_sha256 || '|' || coalesce(deal_id, '')) as duplicates
    from bx_deal_rows
    group by _load_id
),

-- files delivered twice -----------------------------------------------------------------

delivered_tables as (
    -- the tables a redelivered file feeds: those the manifest recorded for its content
    select distinct
        file_deliveries.load_id,
        manifest.table_name,
        file_deliveries.source_file
    from file_deliveries
    inner join manifest
        on
            file_deliveries.file_sha256 = manifest.file_sha256
            and file_deliveries.source_system = manifest.source_system
),

files_twice as (
    select
        load_id,
        table_name,
        count(distinct source_file) as duplicates
    from delivered_tables
    group by load_id, table_name
),

-- calls of several CDR legs ---------------------------------------------------------------

cdr_loads as (
    -- the load of each CDR file (legs carry their file, not their load)
    select
        source_file,
        max(load_id) as load_id
    from manifest
    where table_name = 'asterisk__cdr'
    group by source_file
),

calls as (
    select
        call_id,
        max(leg_number) as legs,
        max(case when is_origin_leg then _source_file end) as origin_file
    from call_legs
    group by call_id
),

multi_leg as (
    select
        cdr_loads.load_id,
        'asterisk__cdr' as table_name,
        count(*) as duplicates
    from calls
    inner join cdr_loads
        on calls.origin_file = cdr_loads.source_file
    where calls.legs > 1
    group by cdr_loads.load_id
),

unioned as (
    select
        load_id,
        table_name,
        'customer_' || rule || '_within_system' as rule,
        within_system as duplicates
    from customer_duplicates
    union all
    select
        load_id,
        table_name,
        'customer_' || rule || '_across_systems' as rule,
        across_systems
    from customer_duplicates
    union all
    select
        load_id,
        table_name,
        'deal_exported_twice' as rule,
        duplicates
    from deals_twice
    union all
    select
        load_id,
        table_name,
        'file_delivered_twice' as rule,
        duplicates
    from files_twice
    union all
    select
        load_id,
        table_name,
        'multi_leg_call' as rule,
        duplicates
    from multi_leg
),

final as (
    select
        cast(load_id as {{ dbt.type_string() }}) as load_id,
        cast(table_name as {{ dbt.type_string() }}) as table_name,
        cast(rule as {{ dbt.type_string() }}) as rule,
        cast(duplicates as bigint) as duplicates
    from unioned
    where
        load_id is not null
        and duplicates > 0
)

select * from final
