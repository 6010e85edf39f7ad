{#
    The open amount of every invoice over time, as intervals: one row per invoice × day
    its open amount changes. Open amount as of D (metric contract) = amount − payments
    applied on or before D; it holds from valid_from (inclusive) to valid_to (exclusive;
    null = until further notice). The first interval starts at the issue date (a payment
    dated before the invoice counts from the issue date). Invoices without an amount in
    the reporting currency (no exchange rate) have no balance. mart_receivables_aging and
    mart_dso read the open amount of any date from here.
#}
with

invoices as (
    select * from {{ ref('int_invoices') }}
),

allocations as (
    select * from {{ ref('int_payment_allocations') }}
),

changes as (
    select
        invoices.invoice_id,
        invoices.issued_on as change_on,
        cast(0 as decimal(18, 2)) as applied_amount
    from invoices
    where invoices.amount is not null

    union all

    select
        allocations.invoice_id,
        case
            when allocations.applied_on < invoices.issued_on then invoices.issued_on
            else allocations.applied_on
        end as change_on,
        allocations.applied_amount
    from allocations
    inner join invoices
        on allocations.invoice_id = invoices.invoice_id
    where invoices.amount is not null
),

daily_changes as (
    select
        invoice_id,
        change_on,
        sum(applied_amount) as applied_amount
    from changes
    group by
        invoice_id,
        change_on
),

final as (
    select
        daily_changes.invoice_id,
        daily_changes.change_on as valid_from,
        lead(daily_changes.change_on) over (
            partition by daily_changes.invoice_id
            order by daily_changes.change_on
        ) as valid_to,
        cast(invoices.amount - sum(daily_changes.applied_amount) over (
            partition by daily_changes.invoice_id
            order by daily_changes.change_on
            rows between unbounded preceding and current row
        ) as decimal(18, 2)) as open_amount
    from daily_changes
    inner join invoices
        on daily_changes.invoice_id = invoices.invoice_id
)

select * from final
