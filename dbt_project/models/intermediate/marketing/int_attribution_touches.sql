{#
    Marketing touches: one row per interaction of a (prospective) customer that carries a
    channel — the customer's leads and deals with their sources.

    | touch_type             | record                 | touch_at         | channel from                        |
    |------------------------|------------------------|------------------|-------------------------------------|
    | salesforce_lead        | Lead                   | CreatedDate      | Lead.LeadSource                     |
    | salesforce_contact     | Contact                | CreatedDate      | Contact.LeadSource                  |
    | salesforce_opportunity | Opportunity            | CreatedDate      | fct_deal.channel (LeadSource, else  |
    |                        |                        |                  | the campaign's type)                |
    | bitrix_lead            | Bitrix lead            | Дата создания    | Источник                            |
    | bitrix_deal            | Bitrix deal            | Дата создания    | fct_deal.channel (Источник)         |

    One interaction is one touch: a lead converted into an opportunity is the touch of
    that opportunity (deal_id = the converted opportunity; the opportunity itself is not a
    second touch), and a contact created by a lead's conversion (created at or after the
    lead) is not a second touch either; a contact that existed before the lead is its
    own, earlier touch. Bitrix exports link no lead to its deal: both are touches.

    Channels: int_channel_map over the raw lead source (`other` when the mapping does not
    know it, `unknown` when the record has no source; unknown touches are kept but
    is_attributable = false). customer_id: int_customer_keys (lead, contact, deal keys);
    a converted lead falls back to its opportunity's customer; null when the record
    matches no customer (such leads still count as leads in mart_channel_roi).
    manager_id: the record's owner (Bitrix «Ответственный» through int_manager_keys).
    is_lead / is_qualified_lead: lead records (leads of mart_channel_roi); qualified =
    Salesforce IsConverted, Bitrix status «Сконвертирован» / «Качественный лид» /
    CONVERTED.
#}
with

sf_leads as (
    select * from {{ ref('stg_salesforce__lead') }}
),

sf_contacts as (
    select * from {{ ref('stg_salesforce__contact') }}
),

bx_leads as (
    select * from {{ ref('stg_bitrix__lead') }}
),

deals as (
    select * from {{ ref('fct_deal') }}
),

channel_map as (
    select * from {{ ref('int_channel_map') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

manager_keys as (
    select * from {{ ref('int_manager_keys') }}
),

deal_customers as (
    select
        customer_keys.source_key as deal_id,
        customer_keys.customer_id
    from customer_keys
    where customer_keys.source_system = 'deal'
),

-- the lead a contact / opportunity was converted from (first one when several)
converted_opportunities as (
    select
        sf_leads.converted_opportunity_id as opportunity_id,
        min(sf_leads.lead_id) as lead_id
    from sf_leads
    where sf_leads.converted_opportunity_id is not null
    group by sf_leads.converted_opportunity_id
),

converted_contacts as (
    select
        sf_leads.converted_contact_id as contact_id,
        min(sf_leads.created_at) as first_lead_created_at
    from sf_leads
    where sf_leads.converted_contact_id is not null
    group by sf_leads.converted_contact_id
),

-- Touches ---------------------------------------------------------------------------

salesforce_lead_touches as (
    select
        'salesforce_lead' as touch_type,
        sf_leads.lead_id as source_key,
        coalesce(lead_keys.customer_id, deal_customers.customer_id) as customer_id,
        case when sf_leads.converted_opportunity_id is not null then 'sf:' || sf_leads.converted_opportunity_id end
            as deal_id,
        sf_leads.created_at as touch_at,
        sf_leads.lead_source as raw_source,
        cast(null as {{ dbt.type_string() }}) as deal_channel,
        sf_leads.owner_id as manager_id,
        true as is_lead,
        coalesce(sf_leads.is_converted, false) as is_qualified_lead
    from sf_leads
    left join customer_keys as lead_keys
        on
            lead_keys.source_system = 'salesforce_lead'
            and sf_leads.lead_id = lead_keys.source_key
    left join deal_customers
        on deal_customers.deal_id = 'sf:' || sf_leads.converted_opportunity_id
),

salesforce_contact_touches as (
    select
        'salesforce_contact' as touch_type,
        sf_contacts.contact_id as source_key,
        contact_keys.customer_id,
        cast(null as {{ dbt.type_string() }}) as deal_id,
        sf_contacts.created_at as touch_at,
        sf_contacts.lead_source as raw_source,
        cast(null as {{ dbt.type_string() }}) as deal_channel,
        sf_contacts.owner_id as manager_id,
        false as is_lead,
        false as is_qualified_lead
    from sf_contacts
    left join customer_keys as contact_keys
        on
            contact_keys.source_system = 'salesforce_contact'
            and sf_contacts.contact_id = contact_keys.source_key
    left join converted_contacts
        on sf_contacts.contact_id = converted_contacts.contact_id
    where
        converted_contacts.contact_id is null
        or sf_contacts.created_at < converted_contacts.first_lead_created_at
),

bitrix_lead_touches as (
    select
        'bitrix_lead' as touch_type,
        bx_leads.lead_id as source_key,
        lead_keys.customer_id,
        cast(null as {{ dbt.type_string() }}) as deal_id,
        bx_leads.created_at as touch_at,
        bx_leads.lead_source as raw_source,
        cast(null as {{ dbt.type_string() }}) as deal_channel,
        manager_keys.manager_id,
        true as is_lead,
        {{ normalize_key('bx_leads.lead_status') }} in (
            'сконвертирован', 'качественный лид', 'converted'
        ) as is_qualified_lead
    from bx_leads
    left join customer_keys as lead_keys
        on
            lead_keys.source_system = 'bitrix_lead'
            and bx_leads.lead_id = lead_keys.source_key
    left join manager_keys
        on
            manager_keys.source_system = 'responsible_name'
            and bx_leads.responsible_key = manager_keys.source_key
),

deal_touches as (
    select
        case deals.pipeline
            when 'salesforce' then 'salesforce_opportunity'
            else 'bitrix_deal'
        end as touch_type,
        deals.source_deal_id as source_key,
        deal_customers.customer_id,
        deals.deal_id,
        deals.created_at as touch_at,
        deals.lead_source as raw_source,
        deals.channel as deal_channel,
        deals.manager_id,
        false as is_lead,
        false as is_qualified_lead
    from deals
    left join deal_customers
        on deals.deal_id = deal_customers.deal_id
    left join converted_opportunities
        on
            deals.pipeline = 'salesforce'
            and deals.source_deal_id = converted_opportunities.opportunity_id
    where converted_opportunities.opportunity_id is null
),

unioned as (
    select * from salesforce_lead_touches
    union all
    select * from salesforce_contact_touches
    union all
    select * from bitrix_lead_touches
    union all
    select * from deal_touches
),

channelled as (
    select
        unioned.*,
        coalesce(
            unioned.deal_channel,
            channel_map.channel,
            case when {{ normalize_key('unioned.raw_source') }} is not null then 'other' end,
            'unknown'
        ) as channel
    from unioned
    left join channel_map
        on
            channel_map.source_type = 'lead_source'
            and channel_map.raw_key = {{ normalize_key('unioned.raw_source') }}
),

final as (
    select
        touch_type || ':' || source_key as touch_id,
        touch_type,
        source_key,
        customer_id,
        deal_id,
        touch_at,
        channel,
        raw_source,
        manager_id,
        is_lead,
        is_qualified_lead,
        channel <> 'unknown' and touch_at is not null as is_attributable
    from channelled
    where source_key is not null
)

select * from final
