{#
    The matching keys of every source record of int_customer_source_records, one row per
    (source_system, source_key, match_kind, match_value):

    - inn: the checksum-valid INN (10 or 12 digits) of the record; anchors a customer;
    - crm_link: an explicit link inside the CRM: a Salesforce account carries
      `salesforce_account:<Id>`, a converted Salesforce lead its ConvertedAccountId;
    - phone: E.164 numbers (account phone, its contacts' phones and mobiles, lead and
      Bitrix deal phones, Bitrix lead work and mobile phones);
    - email: lower-cased e-mails (contacts, leads, Bitrix deals, Bitrix lead work and
      private e-mails);
    - company_name: company_match_key of the company / counterparty name (legal forms,
      quotes, punctuation, case and spaces dropped, Cyrillic transliterated so that a
      Latin-spelled Salesforce account matches its Cyrillic 1C counterparty; a bank
      payer's leading INN/KPP dropped). Placeholder names that name nobody (`none`,
      `[not provided]`, `частное лицо`, …) are left out.

    Staging already normalises phones and e-mails; the macros are applied again here
    (they are idempotent) so that identity resolution does not depend on every upstream
    model doing it, and company names are normalised from the raw names.
    `source_attribute` says where the value was read, for explanations.
#}
with

records as (
    select * from {{ ref('int_customer_source_records') }}
),

accounts as (
    select * from {{ ref('stg_salesforce__account') }}
),

contacts as (
    select * from {{ ref('stg_salesforce__contact') }}
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

onec_parties as (
    select distinct
        invoices.counterparty_inn as inn_digits,
        invoices.counterparty_name as party_name,
        'invoice.counterparty' as source_attribute
    from invoices
    union
    select distinct
        bank_payments.payer_inn as inn_digits,
        bank_payments.payer_name as party_name,
        'bank_payment.payer' as source_attribute
    from bank_payments
),

onec_party_keys as (
    select
        onec_parties.*,
        {{ onec_counterparty_key('onec_parties.inn_digits', 'onec_parties.party_name') }} as source_key
    from onec_parties
),

bitrix_latest as (
    {{ with_recency_rank('deal_snapshots', 'deal_id', 'snapshot_date') }}
),

-- the checksum-valid INN of every source record
inn_identifiers as (
    select
        records.source_system,
        records.source_key,
        'inn' as match_kind,
        records.inn as raw_value,
        'inn' as source_attribute
    from records
    where records.inn is not null
),

-- Salesforce accounts
account_identifiers as (
    {{ identifier_rows(
        'salesforce_account', 'accounts', 'account_id', [
            ('crm_link', "'salesforce_account:' || accounts.account_id", 'account.id'),
            ('phone', 'accounts.phone_raw', 'account.phone'),
            ('company_name', 'accounts.account_name', 'account.name')
        ]
    ) }}
),

-- the contacts of Salesforce accounts: keys of their account
contact_identifiers as (
    {{ identifier_rows(
        'salesforce_account', 'contacts', 'account_id', [
            ('phone', 'contacts.phone_e164', 'contact.phone'),
            ('phone', 'contacts.mobile_phone_e164', 'contact.mobile_phone'),
            ('email', 'contacts.email', 'contact.email')
        ]
    ) }}
),

-- Salesforce leads
sf_lead_identifiers as (
    {{ identifier_rows(
        'salesforce_lead', 'sf_leads', 'lead_id', [
            (
                'crm_link', "'salesforce_account:' || sf_leads.converted_account_id",
                'lead.converted_account_id', 'sf_leads.is_converted'
            ),
            ('phone', 'sf_leads.phone_e164', 'lead.phone'),
            ('email', 'sf_leads.email', 'lead.email'),
            ('company_name', 'sf_leads.company_name', 'lead.company')
        ]
    ) }}
),

-- 1C counterparties: every name they were written with
onec_identifiers as (
    select
        'onec_counterparty' as source_system,
        onec_party_keys.source_key,
        'company_name' as match_kind,
        onec_party_keys.party_name as raw_value,
        onec_party_keys.source_attribute
    from onec_party_keys
),

-- Bitrix deals (latest snapshot)
bitrix_deal_identifiers as (
    {{ identifier_rows(
        'bitrix_deal', 'bitrix_latest', 'deal_id', [
            ('phone', 'bitrix_latest.phone_e164', 'deal.phone'),
            ('email', 'bitrix_latest.email', 'deal.email'),
            ('company_name', 'bitrix_latest.company_name', 'deal.company')
        ], where='bitrix_latest.recency_rank = 1'
    ) }}
),

-- Bitrix leads
bitrix_lead_identifiers as (
    {{ identifier_rows(
        'bitrix_lead', 'bx_leads', 'lead_id', [
            ('phone', 'bx_leads.work_phone_e164', 'lead.work_phone'),
            ('phone', 'bx_leads.mobile_phone_e164', 'lead.mobile_phone'),
            ('email', 'bx_leads.work_email', 'lead.work_email'),
            ('email', 'bx_leads.private_email', 'lead.private_email'),
            ('company_name', 'bx_leads.company_name', 'lead.company')
        ]
    ) }}
),

-- every (record, key) pair read above, one source per block
{%- set identifier_ctes = [
    'inn_identifiers', 'account_identifiers', 'contact_identifiers', 'sf_lead_identifiers',
    'onec_identifiers', 'bitrix_deal_identifiers', 'bitrix_lead_identifiers',
] %}
raw_identifiers as (
    {%- for identifiers in identifier_ctes %}
        select
            {{ identifiers }}.source_system,
            {{ identifiers }}.source_key,
            {{ identifiers }}.match_kind,
            {{ identifiers }}.raw_value,
            {{ identifiers }}.source_attribute
        from {{ identifiers }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

{# Normalise each distinct raw value once (names repeat across snapshots and documents). #}
distinct_values as (
    select distinct
        raw_identifiers.match_kind,
        raw_identifiers.raw_value
    from raw_identifiers
    where raw_identifiers.raw_value is not null
),

company_bases as (
    select
        distinct_values.raw_value,
        {{ normalize_company_name(strip_inn_prefix('distinct_values.raw_value')) }} as normalised_name
    from distinct_values
    where distinct_values.match_kind = 'company_name'
),

company_deduped as (
    select
        company_bases.raw_value,
        {{ dedupe_repeated_text('company_bases.normalised_name') }} as base
    from company_bases
),

{# company_key_from_normalized in two steps: one expression would nest too deep for a SQL parser #}
company_keys as (
    select
        company_deduped.raw_value,
        company_deduped.base,
        {{ company_name_transliterated('company_deduped.base') }} as transliterated
    from company_deduped
),

normalised_values as (
    select
        distinct_values.match_kind,
        distinct_values.raw_value,
        case distinct_values.match_kind
            when 'phone' then {{ normalize_phone('distinct_values.raw_value') }}
            when 'email' then {{ normalize_email('distinct_values.raw_value') }}
            when
                'company_name'
                then {{ company_key_from_transliterated('company_keys.base', 'company_keys.transliterated') }}
            else distinct_values.raw_value
        end as match_value
    from distinct_values
    left join company_keys
        on
            distinct_values.match_kind = 'company_name'
            and distinct_values.raw_value = company_keys.raw_value
),

usable as (
    select
        raw_identifiers.source_system,
        raw_identifiers.source_key,
        raw_identifiers.match_kind,
        normalised_values.match_value,
        raw_identifiers.source_attribute
    from raw_identifiers
    inner join normalised_values
        on
            raw_identifiers.match_kind = normalised_values.match_kind
            and raw_identifiers.raw_value = normalised_values.raw_value
    inner join records
        on
            raw_identifiers.source_system = records.source_system
            and raw_identifiers.source_key = records.source_key
    where
        normalised_values.match_value is not null
        and normalised_values.match_value <> ''
),

final as (
    select
        source_system,
        source_key,
        match_kind,
        match_value,
        min(source_attribute) as source_attribute
    from usable
    group by
        source_system,
        source_key,
        match_kind,
        match_value
)

select * from final
