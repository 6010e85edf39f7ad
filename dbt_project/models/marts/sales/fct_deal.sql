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
        cast(deal_id as {{ dbt.type_string() }}) as deal_id,
        cast(customer_keys.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(pipeline as {{ dbt.type_string() }}) as pipeline,
        cast(created_at as timestamp) as created_at,
        cast(closed_at as timestamp) as closed_at,
        cast(status as {{ dbt.type_string() }}) as status,
        cast(amount as decimal(18, 4)) as amount,
        cast(loss_reason as {{ dbt.type_string() }}) as loss_reason,
        cast(last_stage_before_loss as {{ dbt.type_string() }}) as last_stage_before_loss,
        cast(
            case
                when
                    status = 'won'
                    then {{ dbt.datediff('cast(created_at as date)', 'cast(closed_at as date)', 'day') }}
            end as integer
        ) as sales_cycle_days,
        cast(source_system as {{ dbt.type_string() }}) as source_system,
        cast(source_deal_id as {{ dbt.type_string() }}) as source_deal_id,
        cast(deal_name as {{ dbt.type_string() }}) as deal_name,
        cast(stage as {{ dbt.type_string() }}) as stage,
        cast(stage_order as integer) as stage_order,
        cast(stage_probability as double) as stage_probability,
        cast(is_stage_configured as boolean) as is_stage_configured,
        cast(expected_close_date as date) as expected_close_date,
        cast(amount_original as decimal(18, 4)) as amount_original,
        cast(currency as {{ dbt.type_string() }}) as currency,
        cast(amount_rate_source as {{ dbt.type_string() }}) as amount_rate_source,
        cast(loss_reason_raw as {{ dbt.type_string() }}) as loss_reason_raw,
        cast(lead_source as {{ dbt.type_string() }}) as lead_source,
        cast(company_name as {{ dbt.type_string() }}) as company_name,
        cast(inn as {{ dbt.type_string() }}) as inn,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(responsible_name as {{ dbt.type_string() }}) as responsible_name,
        cast(manager_match_rule as {{ dbt.type_string() }}) as manager_match_rule
    from deals
    left join customer_keys
        on customer_keys.source_key = deals.deal_id
)

select * from final
