{#
    One row per 1C invoice, with what has been paid on it as of the as-of date (var
    `as_of`, default today in the company time zone). Open amount (metric contract) =
    amount − payments applied on or before that date (int_payment_allocations).
    status: `paid` (nothing open), `overdue` (open and the as-of date is after the due
    date), `partially_paid` (open, not overdue, something paid), `open` (nothing paid,
    not overdue).
#}
with

invoices as (
    select * from {{ ref('int_invoices') }}
),

allocations as (
    select * from {{ ref('int_payment_allocations') }}
),

as_of as (
    select {{ as_of_date() }} as as_of_date
),

paid as (
    select
        allocations.invoice_id,
        sum(allocations.applied_amount) as paid_amount,
        max(allocations.applied_on) as last_paid_on,
        count(*) as payments
    from allocations
    cross join as_of
    where allocations.applied_on <= as_of.as_of_date
    group by allocations.invoice_id
),

balances as (
    select
        invoices.*,
        as_of.as_of_date,
        coalesce(paid.paid_amount, 0) as paid_amount,
        invoices.amount - coalesce(paid.paid_amount, 0) as open_amount,
        paid.last_paid_on,
        coalesce(paid.payments, 0) as payments
    from invoices
    cross join as_of
    left join paid
        on invoices.invoice_id = paid.invoice_id
),

final as (
    select
        cast(invoice_id as {{ dbt.type_string() }}) as invoice_id,
        cast(invoice_number as {{ dbt.type_string() }}) as invoice_number,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(deal_id as {{ dbt.type_string() }}) as deal_id,
        cast(issued_on as date) as issued_on,
        cast(due_on as date) as due_on,
        cast(amount as decimal(18, 2)) as amount,
        cast(amount_net as decimal(18, 2)) as amount_net,
        cast(paid_amount as decimal(18, 2)) as paid_amount,
        cast(open_amount as decimal(18, 2)) as open_amount,
        cast(
            case
                when open_amount <= 0 then 'paid'
                when as_of_date > due_on then 'overdue'
                when paid_amount > 0 then 'partially_paid'
                else 'open'
            end as {{ dbt.type_string() }}
        ) as status,
        cast(as_of_date as date) as as_of_date,
        cast(
            case
                when open_amount > 0 and as_of_date > due_on
                    then {{ dbt.datediff('due_on', 'as_of_date', 'day') }}
                else 0
            end as integer
        ) as days_overdue,
        cast(vat as decimal(18, 2)) as vat,
        cast(currency as {{ dbt.type_string() }}) as currency,
        cast(amount_original as decimal(18, 2)) as amount_original,
        cast(fx_rate as decimal(18, 6)) as fx_rate,
        cast(last_paid_on as date) as last_paid_on,
        cast(payments as integer) as payments,
        cast(counterparty_name as {{ dbt.type_string() }}) as counterparty_name,
        cast(counterparty_inn as {{ dbt.type_string() }}) as counterparty_inn,
        cast(customer_match as {{ dbt.type_string() }}) as customer_match,
        cast(responsible_name as {{ dbt.type_string() }}) as responsible_name,
        cast(deal_ref as {{ dbt.type_string() }}) as deal_ref,
        cast(is_vat_estimated as boolean) as is_vat_estimated,
        cast(has_fx_rate as boolean) as has_fx_rate,
        cast(is_due_date_missing as boolean) as is_due_date_missing,
        cast(_source_file as {{ dbt.type_string() }}) as source_file
    from balances
)

select * from final
