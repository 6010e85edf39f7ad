{#
    One row per product: Salesforce Product2 records (product_id = 15-character Id), plus
    the product codes of the 1C cost list that no Salesforce product carries
    (product_id = `code:<code>`, name = the code), so that every cost has a product.
    Codes match case-insensitively after trimming.
#}
with

products as (
    select * from {{ ref('stg_salesforce__product') }}
),

product_costs as (
    select * from {{ ref('stg_onec__product_cost') }}
),

cost_codes as (
    select
        upper(product_costs.product_code) as code_key,
        min(product_costs.product_code) as product_code
    from product_costs
    where product_costs.product_code is not null
    group by upper(product_costs.product_code)
),

salesforce_products as (
    select
        products.product_id,
        products.product_code as code,
        coalesce(products.product_name, products.product_code, products.product_id) as name,
        coalesce(products.product_family, 'unknown') as family,
        products.is_active,
        cost_codes.code_key is not null as has_cost,
        'salesforce' as source_system
    from products
    left join cost_codes
        on cost_codes.code_key = upper(products.product_code)
    where products.product_id is not null
),

cost_only_products as (
    select
        'code:' || cost_codes.product_code as product_id,
        cost_codes.product_code as code,
        cost_codes.product_code as name,
        'unknown' as family,
        true as is_active,
        true as has_cost,
        'onec_cost_list' as source_system
    from cost_codes
    left join products
        on upper(products.product_code) = cost_codes.code_key
    where products.product_id is null
),

final as (
    select * from salesforce_products
    union all
    select * from cost_only_products
)

select * from final
