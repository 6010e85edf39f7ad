{#
    The lookup table the fact models join to get a customer_id: one row per
    (source_system, source_key) that resolves to exactly one customer.

    | source_system      | source_key                                   | use it for                    |
    |--------------------|----------------------------------------------|-------------------------------|
    | salesforce_account | 15-character Account Id (sf_id15)            | Opportunity.AccountId, …      |
    | salesforce_contact | 15-character Contact Id                      | Task.WhoId                    |
    | salesforce_lead    | 15-character Lead Id (only leads that match) | Lead attribution              |
    | deal               | int_deals.deal_id (`sf:<Id>` / `bx:<ID>`)    | fct_deal                      |
    | bitrix_deal        | Bitrix deal ID                               | Bitrix deal snapshots         |
    | bitrix_lead        | Bitrix lead ID (only leads that match)       | Bitrix leads                  |
    | onec_counterparty  | onec_counterparty_key(INN digits, name)      | fct_invoice, fct_payment      |
    | inn                | checksum-valid INN, digits                   | payer INN of a payment        |
    | phone              | E.164 number, when one customer has it       | fct_call (caller / callee)    |
    | email              | lower-cased e-mail, when one customer has it | e-mail activities             |

    match_rule says how the key got its customer (the record's rule from
    int_customer_identity_links; `crm_link` for contacts and deals through their account;
    the key's own kind for inn / phone / email). A phone or e-mail found on two
    customers is left out (int_customer_identity_conflicts, shared_key).
#}
with

links as (
    select * from {{ ref('int_customer_identity_links') }}
),

identifiers as (
    select * from {{ ref('int_customer_identifiers') }}
),

contacts as (
    select * from {{ ref('stg_salesforce__contact') }}
),

opportunities as (
    select * from {{ ref('stg_salesforce__opportunity') }}
),

resolved_links as (
    select *
    from links
    where customer_id is not null
),

account_links as (
    select *
    from resolved_links
    where source_system = 'salesforce_account'
),

record_keys as (
    select
        resolved_links.source_system,
        resolved_links.source_key,
        resolved_links.customer_id,
        resolved_links.match_rule
    from resolved_links
),

contact_keys as (
    select
        'salesforce_contact' as source_system,
        contacts.contact_id as source_key,
        account_links.customer_id,
        'crm_link' as match_rule
    from contacts
    inner join account_links
        on contacts.account_id = account_links.source_key
),

deal_keys as (
    select
        'deal' as source_system,
        'sf:' || opportunities.opportunity_id as source_key,
        account_links.customer_id,
        'crm_link' as match_rule
    from opportunities
    inner join account_links
        on opportunities.account_id = account_links.source_key

    union all

    select
        'deal' as source_system,
        'bx:' || resolved_links.source_key as source_key,
        resolved_links.customer_id,
        resolved_links.match_rule
    from resolved_links
    where resolved_links.source_system = 'bitrix_deal'
),

value_customers as (
    select
        identifiers.match_kind,
        identifiers.match_value,
        min(resolved_links.customer_id) as customer_id,
        count(distinct resolved_links.customer_id) as customer_count
    from identifiers
    inner join resolved_links
        on
            identifiers.source_system = resolved_links.source_system
            and identifiers.source_key = resolved_links.source_key
    where identifiers.match_kind in ('inn', 'phone', 'email')
    group by
        identifiers.match_kind,
        identifiers.match_value
),

value_keys as (
    select
        value_customers.match_kind as source_system,
        value_customers.match_value as source_key,
        value_customers.customer_id,
        value_customers.match_kind as match_rule
    from value_customers
    where value_customers.customer_count = 1
),

unioned as (
    select * from record_keys
    union all
    select * from contact_keys
    union all
    select * from deal_keys
    union all
    select * from value_keys
),

final as (
    select
        source_system,
        source_key,
        min(customer_id) as customer_id,
        min(match_rule) as match_rule
    from unioned
    where source_key is not null
    group by
        source_system,
        source_key
)

select * from final
