{#
    One row per resolved customer (int_customer_identity_links: INN, then E.164 phone,
    then e-mail, then normalised company name; ambiguous matches not merged).

    - name: the name on the best-ranked record (Salesforce account, then 1C counterparty,
      then Bitrix deal company, then lead company; the earliest seen within a rank), else
      the primary e-mail / phone, else the anchor key;
    - primary_phone / primary_email: the value on the best-ranked record, then the one on
      most of the customer's records, then the smallest;
    - acquisition_channel: channel of the customer's first deal (int_deals, earliest
      created_at), `unknown` when it has no deal;
    - first_won_at: closing time of its first won deal;
    - segment: size band (seed customer_segments) of lifetime revenue = the larger of its
      won deal amounts and its net invoiced amount (invoices in the reporting currency),
      both in the reporting currency.
#}
with

links as (
    select * from {{ ref('int_customer_identity_links') }}
),

records as (
    select * from {{ ref('int_customer_source_records') }}
),

identifiers as (
    select * from {{ ref('int_customer_identifiers') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

deals as (
    select * from {{ ref('int_deals') }}
),

invoices as (
    select * from {{ ref('stg_onec__invoice') }}
),

segments as (
    select * from {{ ref('customer_segments') }}
),

customer_records as (
    select
        links.customer_id,
        links.anchor_key,
        links.is_inn_anchored,
        links.record_id,
        links.match_rule,
        records.record_rank,
        records.record_name,
        records.account_type,
        records.industry,
        records.first_seen_at
    from links
    inner join records
        on links.record_id = records.record_id
    where links.customer_id is not null
),

customers as (
    select
        customer_id,
        min(anchor_key) as anchor_key,
        max(case when is_inn_anchored then 1 else 0 end) = 1 as is_inn_anchored,
        count(*) as source_record_count,
        min(first_seen_at) as first_seen_at
    from customer_records
    group by customer_id
),

names as (
    select
        customer_id,
        record_name,
        row_number() over (
            partition by customer_id
            order by record_rank, first_seen_at, record_name
        ) as name_rank
    from customer_records
    where record_name is not null
),

salesforce_attributes as (
    select
        customer_id,
        account_type,
        industry,
        row_number() over (
            partition by customer_id
            order by first_seen_at, record_id
        ) as attribute_rank
    from customer_records
    where record_id like 'salesforce_account:%'
),

contact_values as (
    select
        customer_records.customer_id,
        identifiers.match_kind,
        identifiers.match_value,
        min(customer_records.record_rank) as best_rank,
        count(distinct customer_records.record_id) as record_count
    from customer_records
    inner join identifiers
        on identifiers.source_system || ':' || identifiers.source_key = customer_records.record_id
    where identifiers.match_kind in ('phone', 'email')
    group by
        customer_records.customer_id,
        identifiers.match_kind,
        identifiers.match_value
),

ranked_contact_values as (
    select
        contact_values.*,
        row_number() over (
            partition by contact_values.customer_id, contact_values.match_kind
            order by contact_values.best_rank asc, contact_values.record_count desc, contact_values.match_value asc
        ) as value_rank
    from contact_values
),

source_id_list as (
    select
        customer_id,
        '[' || {{ dbt.listagg(json_string('record_id'), "','", 'order by record_id') }} || ']' as source_ids
    from customer_records
    group by customer_id
),

rule_list as (
    select
        customer_id,
        {{ dbt.listagg('match_rule', "','", 'order by match_rule') }} as merge_rules
    from (
        select distinct
            customer_id,
            match_rule
        from customer_records
    ) as distinct_rules
    group by customer_id
),

customer_deals as (
    select
        customer_keys.customer_id,
        deals.deal_id,
        deals.channel,
        deals.status,
        deals.created_at,
        deals.closed_at,
        deals.amount,
        row_number() over (
            partition by customer_keys.customer_id
            order by deals.created_at, deals.deal_id
        ) as deal_rank
    from deals
    inner join customer_keys
        on
            customer_keys.source_system = 'deal'
            and deals.deal_id = customer_keys.source_key
),

deal_figures as (
    select
        customer_id,
        min(created_at) as first_deal_at,
        min(case when status = 'won' then closed_at end) as first_won_at,
        sum(case when status = 'won' then 1 else 0 end) as won_deals,
        sum(case when status = 'won' then amount else 0 end) as won_amount
    from customer_deals
    group by customer_id
),

invoice_parties as (
    select
        invoices.counterparty_inn,
        invoices.counterparty_name,
        sum(invoices.amount - coalesce(invoices.vat, 0)) as amount_net
    from invoices
    where
        invoices.currency_iso_code is null
        or invoices.currency_iso_code = '{{ var("reporting_currency", "RUB") }}'
    group by
        invoices.counterparty_inn,
        invoices.counterparty_name
),

invoice_figures as (
    select
        customer_keys.customer_id,
        sum(invoice_parties.amount_net) as invoiced_amount_net
    from invoice_parties
    inner join customer_keys
        on
            customer_keys.source_system = 'onec_counterparty'
            and customer_keys.source_key
            = {{ onec_counterparty_key('invoice_parties.counterparty_inn', 'invoice_parties.counterparty_name') }}
    group by customer_keys.customer_id
),

revenue as (
    select
        customers.customer_id,
        case
            when coalesce(deal_figures.won_amount, 0) >= coalesce(invoice_figures.invoiced_amount_net, 0)
                then coalesce(deal_figures.won_amount, 0)
            else invoice_figures.invoiced_amount_net
        end as lifetime_revenue
    from customers
    left join deal_figures
        on customers.customer_id = deal_figures.customer_id
    left join invoice_figures
        on customers.customer_id = invoice_figures.customer_id
),

customer_segments as (
    select
        revenue.customer_id,
        segments.segment,
        row_number() over (
            partition by revenue.customer_id
            order by segments.min_amount desc
        ) as segment_rank
    from revenue
    inner join segments
        on revenue.lifetime_revenue >= segments.min_amount
),

final as (
    select
        customers.customer_id,
        coalesce(names.record_name, emails.match_value, phones.match_value, customers.anchor_key) as name,
        case when customers.is_inn_anchored then substr(customers.anchor_key, 5) end as inn,
        case
            when not customers.is_inn_anchored then null
            when length(customers.anchor_key) = 14 then 'organisation'
            else 'individual'
        end as legal_form,
        phones.match_value as primary_phone,
        emails.match_value as primary_email,
        coalesce(customer_segments.segment, 'unsegmented') as segment,
        coalesce(first_deals.channel, 'unknown') as acquisition_channel,
        cast(deal_figures.first_deal_at as timestamp) as first_deal_at,
        cast(deal_figures.first_won_at as timestamp) as first_won_at,
        cast(coalesce(deal_figures.won_deals, 0) as integer) as won_deals,
        cast(coalesce(deal_figures.won_amount, 0) as decimal(18, 2)) as won_amount,
        cast(coalesce(invoice_figures.invoiced_amount_net, 0) as decimal(18, 2)) as invoiced_amount_net,
        cast(revenue.lifetime_revenue as decimal(18, 2)) as lifetime_revenue,
        salesforce_attributes.account_type,
        salesforce_attributes.industry,
        source_id_list.source_ids,
        cast(customers.source_record_count as integer) as source_record_count,
        rule_list.merge_rules,
        customers.anchor_key,
        customers.is_inn_anchored,
        cast(customers.first_seen_at as timestamp) as first_seen_at
    from customers
    left join names
        on
            customers.customer_id = names.customer_id
            and names.name_rank = 1
    left join salesforce_attributes
        on
            customers.customer_id = salesforce_attributes.customer_id
            and salesforce_attributes.attribute_rank = 1
    left join ranked_contact_values as phones
        on
            customers.customer_id = phones.customer_id
            and phones.match_kind = 'phone'
            and phones.value_rank = 1
    left join ranked_contact_values as emails
        on
            customers.customer_id = emails.customer_id
            and emails.match_kind = 'email'
            and emails.value_rank = 1
    left join source_id_list
        on customers.customer_id = source_id_list.customer_id
    left join rule_list
        on customers.customer_id = rule_list.customer_id
    left join customer_deals as first_deals
        on
            customers.customer_id = first_deals.customer_id
            and first_deals.deal_rank = 1
    left join deal_figures
        on customers.customer_id = deal_figures.customer_id
    left join invoice_figures
        on customers.customer_id = invoice_figures.customer_id
    left join revenue
        on customers.customer_id = revenue.customer_id
    left join customer_segments
        on
            customers.customer_id = customer_segments.customer_id
            and customer_segments.segment_rank = 1
)

select * from final
