{#
    The aging dashboards' table: mart_receivables_aging summed to the grain its charts
    show — as-of date × customer × responsible manager × aging bucket — with the names a
    chart groups by and the flags a filter picks, so that a chart reads one snapshot's
    few rows and joins nothing at query time. mart_receivables_aging stays the fact
    table (one row per invoice) for SQL Lab and drill-down; the test
    `sums_agree_with_facts` proves both hold the same money and invoice count per date.
    Rows are written in as-of date order: a filter on one date reads the row groups of
    that date only (DuckDB's zone maps).
#}
with

aging as (
    select * from {{ ref('mart_receivables_aging') }}
),

customers as (
    select * from {{ ref('dim_customer') }}
),

managers as (
    select * from {{ ref('dim_manager') }}
),

summed as (
    select
        aging.as_of_date,
        aging.customer_id,
        aging.manager_id,
        aging.bucket,
        max(case when aging.is_month_end then 1 else 0 end) = 1 as is_month_end,
        count(*) as open_invoices,
        sum(aging.open_amount) as open_amount,
        sum(case when aging.days_overdue > 0 then aging.open_amount else 0 end)
            as overdue_amount,
        max(aging.days_overdue) as max_days_overdue
    from aging
    group by aging.as_of_date, aging.customer_id, aging.manager_id, aging.bucket
),

latest as (
    select max(aging.as_of_date) as as_of_date from aging
),

final as (
    select
        cast(summed.as_of_date as date) as as_of_date,
        cast(cast(summed.as_of_date as date) as {{ dbt.type_string() }}) as as_of,
        cast(summed.as_of_date = latest.as_of_date as boolean) as is_latest_snapshot,
        cast(summed.is_month_end as boolean) as is_month_end,
        cast(summed.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(coalesce(customers.name, 'unknown') as {{ dbt.type_string() }}) as customer_name,
        cast(summed.manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(coalesce(managers.name, 'unassigned') as {{ dbt.type_string() }})
            as manager_name,
        cast(coalesce(managers.team, 'unassigned') as {{ dbt.type_string() }}) as team,
        cast(summed.bucket as {{ dbt.type_string() }}) as bucket,
        cast(summed.bucket <> 'not_due' as boolean) as is_overdue,
        cast(summed.open_invoices as bigint) as open_invoices,
        cast(summed.open_amount as decimal(18, 2)) as open_amount,
        cast(summed.overdue_amount as decimal(18, 2)) as overdue_amount,
        cast(summed.max_days_overdue as integer) as max_days_overdue
    from summed
    cross join latest
    left join customers
        on summed.customer_id = customers.customer_id
    left join managers
        on summed.manager_id = managers.manager_id
)

select * from final
order by as_of_date
