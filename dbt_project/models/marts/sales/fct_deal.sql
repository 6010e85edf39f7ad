{#
    One row per deal (Salesforce opportunity or Bitrix deal). sales_cycle_days is the
    metric "Sales cycle": close date minus created date in whole calendar days (local),
    for won deals only.
#}
with

deals as (
    select * from {{ ref('int_deals') }}
),

customer_keys as (
    -- resolved customers (dim_customer); int_deals' provisional key is kept as a fallback
    select
        source_key,
        customer_id
    from {{ ref('int_customer_keys') }}
    where source_system = 'deal'
),

final as (
    select
        cast(deals.deal_id as {{ dbt.type_string() }}) as deal_id,
        cast(customer_keys.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(deals.manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(deals.channel as {{ dbt.type_string() }}) as channel,
        cast(deals.pipeline as {{ dbt.type_string() }}) as pipeline,
        cast(deals.created_at as timestamp) as created_at,
        cast(deals.closed_at as timestamp) as closed_at,
        cast(deals.status as {{ dbt.type_string() }}) as status,
        cast(deals.amount as decimal(18, 4)) as amount,
        cast(deals.loss_reason as {{ dbt.type_string() }}) as loss_reason,
        cast(deals.last_stage_before_loss as {{ dbt.type_string() }}) as last_stage_before_loss,
        cast(
            case
                when
                    deals.status = 'won'
                    then {{ dbt.datediff('cast(deals.created_at as date)', 'cast(deals.closed_at as date)', 'day') }}
            end as integer
        ) as sales_cycle_days,
        cast(deals.source_system as {{ dbt.type_string() }}) as source_system,
        cast(deals.source_deal_id as {{ dbt.type_string() }}) as source_deal_id,
        cast(deals.deal_name as {{ dbt.type_string() }}) as deal_name,
        cast(deals.stage as {{ dbt.type_string() }}) as stage,
        cast(deals.stage_order as integer) as stage_order,
        cast(deals.stage_probability as double) as stage_probability,
        cast(deals.is_stage_configured as boolean) as is_stage_configured,
        cast(deals.expected_close_date as date) as expected_close_date,
        cast(deals.amount_original as decimal(18, 4)) as amount_original,
        cast(deals.currency as {{ dbt.type_string() }}) as currency,
        cast(deals.amount_rate_source as {{ dbt.type_string() }}) as amount_rate_source,
        cast(deals.loss_reason_raw as {{ dbt.type_string() }}) as loss_reason_raw,
        cast(deals.lead_source as {{ dbt.type_string() }}) as lead_source,
        cast(deals.company_name as {{ dbt.type_string() }}) as company_name,
        cast(deals.inn as {{ dbt.type_string() }}) as inn,
        cast(deals.account_id as {{ dbt.type_string() }}) as account_id,
        cast(deals.responsible_name as {{ dbt.type_string() }}) as responsible_name,
        cast(deals.manager_match_rule as {{ dbt.type_string() }}) as manager_match_rule
    from deals
    left join customer_keys
        on deals.deal_id = customer_keys.source_key
)

select * from final
