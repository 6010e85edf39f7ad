{#
    Cost of goods sold per line of a won deal: one row per Salesforce
    OpportunityLineItem of a won opportunity. COGS (metric contract) = quantity × unit
    cost valid on the sale date, the unit cost coming from the 1C cost list
    (stg_onec__product_cost) of the line's product code (Product2.ProductCode, matched
    case-insensitively after trimming): the row with the latest valid_from on or before
    the sale date. Sale date = the local date the deal was won (int_deals.closed_at).
    A line whose product has no cost valid on that date keeps cogs null (has_cost false)
    rather than a guessed cost.

    Revenue of the line for margins: TotalPrice (else quantity × UnitPrice) in the deal
    currency, converted at the rate of the sale date (int_currency_rates) to the
    reporting currency = line_amount, VAT included as CRM prices are; line_amount_net =
    line_amount / (1 + var vat_rate); gross_margin = line_amount_net − cogs.

    Bitrix deals carry no product lines and 1C invoices no lines in the exports
    (docs/sources.md), so COGS exists for Salesforce deals with line items only.
#}
with

line_items as (
    select * from {{ ref('stg_salesforce__opportunity_line_item') }}
),

products as (
    select * from {{ ref('stg_salesforce__product') }}
),

product_costs as (
    select * from {{ ref('stg_onec__product_cost') }}
),

deals as (
    select * from {{ ref('int_deals') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

currency_rates as (
    select * from {{ ref('int_currency_rates') }}
),

cost_periods as (
    select
        upper(product_costs.product_code) as code_key,
        product_costs.unit_cost,
        product_costs.valid_from,
        lead(product_costs.valid_from) over (
            partition by upper(product_costs.product_code)
            order by product_costs.valid_from
        ) as valid_to
    from product_costs
    where product_costs.product_code is not null
),

won_lines as (
    select
        line_items.line_item_id,
        deals.deal_id,
        deals.manager_id,
        deals.channel,
        deals.currency,
        cast(deals.closed_at as date) as sale_date,
        line_items.product_id,
        products.product_code,
        products.product_family,
        line_items.quantity,
        line_items.unit_price,
        coalesce(line_items.total_price, line_items.quantity * line_items.unit_price) as line_amount_original
    from line_items
    inner join deals
        on deals.deal_id = 'sf:' || line_items.opportunity_id
    left join products
        on line_items.product_id = products.product_id
    where
        deals.status = 'won'
        and deals.closed_at is not null
),

costed as (
    select
        won_lines.*,
        cost_periods.unit_cost,
        cost_periods.valid_from as cost_valid_from,
        line_rates.rate_to_rub / reporting_rates.rate_to_rub as fx_rate
    from won_lines
    left join cost_periods
        on
            cost_periods.code_key = upper(won_lines.product_code)
            and {{ valid_on('cost_periods', 'won_lines.sale_date') }}
    left join currency_rates as line_rates
        on {{ rate_on('line_rates', 'won_lines.sale_date', currency='won_lines.currency') }}
    left join currency_rates as reporting_rates
        on {{ rate_on('reporting_rates', 'won_lines.sale_date') }}
),

amounts as (
    select
        costed.*,
        {{ money_at_rate('costed.line_amount_original', 'costed.fx_rate') }} as line_amount,
        cast(round(costed.quantity * costed.unit_cost, 2) as decimal(18, 2)) as cogs
    from costed
),

final as (
    select
        amounts.line_item_id,
        amounts.deal_id,
        customer_keys.customer_id,
        amounts.manager_id,
        amounts.channel,
        amounts.sale_date,
        amounts.product_id,
        amounts.product_code,
        amounts.product_family,
        amounts.quantity,
        amounts.currency,
        amounts.unit_price as unit_price_original,
        amounts.line_amount_original,
        amounts.line_amount,
        {{ net_of_vat('amounts.line_amount') }} as line_amount_net,
        amounts.unit_cost,
        amounts.cost_valid_from,
        amounts.cogs,
        amounts.unit_cost is not null as has_cost,
        cast({{ net_of_vat('amounts.line_amount') }} - amounts.cogs as decimal(18, 2)) as gross_margin
    from amounts
    left join customer_keys
        on
            customer_keys.source_system = 'deal'
            and amounts.deal_id = customer_keys.source_key
)

select * from final
