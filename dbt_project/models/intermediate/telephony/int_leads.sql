{#
    One row per lead of either CRM: Salesforce Lead records (deleted ones dropped in
    staging) and Bitrix leads (latest export of each). The lead population of lead
    processing and of the lead-to-won rate.

    - lead_id: `sf:<15-character Id>` / `bx:<ID>`.
    - channel: the raw lead source through int_channel_map (seed channel_mapping); `other`
      when the mapping does not know it, `unknown` when the lead has no source — the rule
      of int_attribution_touches, so lead counts agree with mart_channel_roi.
    - manager_id: the lead owner — Salesforce OwnerId, Bitrix «Ответственный» — through
      int_manager_keys; null when it names no employee (a Salesforce queue).
    - phone_1_e164 / phone_2_e164: the lead's phones (Salesforce Phone; Bitrix work and
      mobile phone — staging keeps the first number of each cell).
    - is_converted: Salesforce IsConverted; Bitrix status «Сконвертирован» / CONVERTED.
    - customer_id: the resolved customer when the lead matches one (int_customer_keys).
#}
with

sf_leads as (
    select * from {{ ref('stg_salesforce__lead') }}
),

bx_leads as (
    select * from {{ ref('stg_bitrix__lead') }}
),

channel_map as (
    select * from {{ ref('int_channel_map') }}
),

manager_keys as (
    select * from {{ ref('int_manager_keys') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

salesforce as (
    select
        'sf:' || sf_leads.lead_id as lead_id,
        'salesforce' as source_system,
        sf_leads.lead_id as source_lead_id,
        sf_leads.created_at,
        sf_leads.lead_status,
        sf_leads.lead_source,
        'salesforce_user' as manager_key_system,
        sf_leads.owner_id as manager_key,
        sf_leads.phone_e164 as phone_1_e164,
        cast(null as {{ dbt.type_string() }}) as phone_2_e164,
        sf_leads.email,
        coalesce(sf_leads.is_converted, false) as is_converted,
        'salesforce_lead' as customer_key_system
    from sf_leads
    where sf_leads.lead_id is not null
),

bitrix as (
    select
        'bx:' || bx_leads.lead_id as lead_id,
        'bitrix' as source_system,
        bx_leads.lead_id as source_lead_id,
        bx_leads.created_at,
        bx_leads.lead_status,
        bx_leads.lead_source,
        'responsible_name' as manager_key_system,
        bx_leads.responsible_key as manager_key,
        bx_leads.work_phone_e164 as phone_1_e164,
        bx_leads.mobile_phone_e164 as phone_2_e164,
        coalesce(bx_leads.work_email, bx_leads.private_email) as email,
        coalesce({{ normalize_key('bx_leads.lead_status') }} in ('сконвертирован', 'converted'), false) as is_converted,
        'bitrix_lead' as customer_key_system
    from bx_leads
    where bx_leads.lead_id is not null
),

unioned as (
    select * from salesforce
    union all
    select * from bitrix
),

final as (
    select
        unioned.lead_id,
        unioned.source_system,
        unioned.source_lead_id,
        unioned.created_at,
        {{ month_start('unioned.created_at') }} as created_month,
        unioned.lead_status,
        unioned.lead_source,
        coalesce(
            channel_map.channel,
            case when {{ normalize_key('unioned.lead_source') }} is not null then 'other' end,
            'unknown'
        ) as channel,
        manager_keys.manager_id,
        unioned.manager_key as owner_key,
        unioned.phone_1_e164,
        unioned.phone_2_e164,
        unioned.email,
        unioned.is_converted,
        customer_keys.customer_id
    from unioned
    left join channel_map
        on
            channel_map.source_type = 'lead_source'
            and channel_map.raw_key = {{ normalize_key('unioned.lead_source') }}
    left join manager_keys
        on
            unioned.manager_key_system = manager_keys.source_system
            and unioned.manager_key = manager_keys.source_key
    left join customer_keys
        on
            unioned.customer_key_system = customer_keys.source_system
            and unioned.source_lead_id = customer_keys.source_key
)

select * from final
