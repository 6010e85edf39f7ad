{#
    Every source record that can name a customer, one row per (source_system, source_key):

    | source_system        | source_key                            | rank | creates a customer |
    |----------------------|---------------------------------------|------|--------------------|
    | salesforce_account   | 15-character Account Id               | 1    | yes                |
    | onec_counterparty    | onec_counterparty_key(INN, name)      | 2    | yes                |
    | bitrix_deal          | Bitrix deal ID                        | 3    | yes                |
    | salesforce_lead      | 15-character Lead Id                  | 4    | no (attach only)   |
    | bitrix_lead          | Bitrix lead ID                        | 5    | no (attach only)   |

    1C counterparties are the invoice counterparties and the payers of incoming bank
    payments (our account is the recipient; transfers between our own accounts, payer
    INN = recipient INN, are left out), keyed by a checksum-valid INN, else by the
    normalised name. A Bitrix deal carries its company fields on the latest snapshot.
    Leads attach to a customer when they match one but never create one: a lead is a
    prospect, not a customer. Telephony numbers are not records at all, only lookup keys
    (int_customer_keys). `rank` orders the records for the choice of an anchor and of the
    customer's display name (Salesforce, then 1C, then Bitrix, then leads).
#}
with

accounts as (
    select * from {{ ref('stg_salesforce__account') }}
),

sf_leads as (
    select * from {{ ref('stg_salesforce__lead') }}
),

invoices as (
    select * from {{ ref('stg_onec__invoice') }}
),

bank_payments as (
    select * from {{ ref('stg_onec__bank_payment') }}
),

deal_snapshots as (
    select * from {{ ref('stg_bitrix__deal_snapshot') }}
),

bx_leads as (
    select * from {{ ref('stg_bitrix__lead') }}
),

-- Salesforce accounts ------------------------------------------------------------------

salesforce_accounts as (
    select
        'salesforce_account' as source_system,
        accounts.account_id as source_key,
        1 as record_rank,
        true as can_anchor,
        accounts.account_name as record_name,
        case when accounts.inn_is_valid then accounts.inn end as inn,
        accounts.inn as inn_digits,
        accounts.account_type,
        accounts.industry,
        accounts.created_at as first_seen_at
    from accounts
    where accounts.account_id is not null
),

-- 1C counterparties -----------------------------------------------------------------

onec_parties as (
    select
        invoices.counterparty_name as party_name,
        invoices.counterparty_inn as inn_digits,
        {{ date_to_timestamp('invoices.issued_on') }} as seen_at,
        1 as origin_rank
    from invoices

    union all

    select
        bank_payments.payer_name as party_name,
        bank_payments.payer_inn as inn_digits,
        {{ date_to_timestamp('coalesce(bank_payments.received_on, bank_payments.doc_date)') }} as seen_at,
        2 as origin_rank
    from bank_payments
    where {{ is_received_payment('bank_payments') }}
),

{# The key is computed once per distinct (INN, name) pair: names repeat on every document. #}
onec_pair_keys as (
    select
        pairs.inn_digits,
        pairs.party_name,
        {{ onec_counterparty_key('pairs.inn_digits', 'pairs.party_name') }} as source_key
    from (
        select distinct
            onec_parties.inn_digits,
            onec_parties.party_name
        from onec_parties
    ) as pairs
),

onec_keyed as (
    select
        onec_pair_keys.source_key,
        onec_parties.*
    from onec_parties
    inner join onec_pair_keys
        on
            coalesce(onec_pair_keys.inn_digits, '') = coalesce(onec_parties.inn_digits, '')
            and coalesce(onec_pair_keys.party_name, '') = coalesce(onec_parties.party_name, '')
),

onec_named as (
    select
        onec_keyed.*,
        row_number() over (
            partition by onec_keyed.source_key
            order by onec_keyed.origin_rank asc, onec_keyed.seen_at desc, onec_keyed.party_name asc
        ) as name_rank,
        min(onec_keyed.seen_at) over (partition by onec_keyed.source_key) as first_seen_at
    from onec_keyed
    where onec_keyed.source_key is not null
),

onec_counterparties as (
    select
        'onec_counterparty' as source_system,
        onec_named.source_key,
        2 as record_rank,
        true as can_anchor,
        {%- set inn_kpp_prefix = '^(ИНН|инн)?[ ]*[0-9]{10,12}([ ]*(КПП|кпп)[ ]*[0-9]{9})?[ ,;]*' %}
        {{ dedupe_repeated_text(clean_text(regexp_replace_all("trim(onec_named.party_name)", inn_kpp_prefix, ''))) }}
            as record_name,
        case when onec_named.source_key like 'inn:%' then substr(onec_named.source_key, 5) end as inn,
        onec_named.inn_digits,
        cast(null as {{ dbt.type_string() }}) as account_type,
        cast(null as {{ dbt.type_string() }}) as industry,
        onec_named.first_seen_at
    from onec_named
    where onec_named.name_rank = 1
),

-- Bitrix deals ----------------------------------------------------------------------

bitrix_latest as (
    {{ with_recency_rank('deal_snapshots', 'deal_id', 'snapshot_date', where='deal_snapshots.deal_id is not null') }}
),

bitrix_deals as (
    select
        'bitrix_deal' as source_system,
        bitrix_latest.deal_id as source_key,
        3 as record_rank,
        true as can_anchor,
        bitrix_latest.company_name as record_name,
        case when bitrix_latest.inn_is_valid then bitrix_latest.inn end as inn,
        bitrix_latest.inn as inn_digits,
        cast(null as {{ dbt.type_string() }}) as account_type,
        cast(null as {{ dbt.type_string() }}) as industry,
        coalesce(bitrix_latest.created_at, {{ date_to_timestamp('bitrix_latest.snapshot_date') }}) as first_seen_at
    from bitrix_latest
    where bitrix_latest.recency_rank = 1
),

-- Leads (attach only) ---------------------------------------------------------------

{#- a lead names a company only, and never anchors a customer #}
{%- for cte, source_system, leads, record_rank in [
    ('salesforce_leads', 'salesforce_lead', 'sf_leads', 4),
    ('bitrix_leads', 'bitrix_lead', 'bx_leads', 5),
] %}
    {{ cte }} as (
        select
            '{{ source_system }}' as source_system,
            {{ leads }}.lead_id as source_key,
            {{ record_rank }} as record_rank,
            false as can_anchor,
            {{ leads }}.company_name as record_name,
            cast(null as {{ dbt.type_string() }}) as inn,
            cast(null as {{ dbt.type_string() }}) as inn_digits,
            cast(null as {{ dbt.type_string() }}) as account_type,
            cast(null as {{ dbt.type_string() }}) as industry,
            {{ leads }}.created_at as first_seen_at
        from {{ leads }}
        where {{ leads }}.lead_id is not null
    ),
{% endfor %}

unioned as (
    select * from salesforce_accounts
    union all
    select * from onec_counterparties
    union all
    select * from bitrix_deals
    union all
    select * from salesforce_leads
    union all
    select * from bitrix_leads
),

final as (
    select
        source_system,
        source_key,
        source_system || ':' || source_key as record_id,
        cast(record_rank as integer) as record_rank,
        can_anchor,
        record_name,
        inn,
        inn_digits,
        account_type,
        industry,
        cast(first_seen_at as timestamp) as first_seen_at
    from unioned
)

select * from final
