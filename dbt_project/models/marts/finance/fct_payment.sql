{{
    config(
        materialized='incremental',
        incremental_strategy=('delete+insert' if target.type == 'duckdb' else 'insert_overwrite'),
        partition_by=(none if target.type == 'duckdb' else ['paid_on']),
        unique_key='payment_id',
        on_schema_change='fail',
        post_hook="{{ incremental_delete_vanished_hook('payment_id', ref('int_payments')) }}",
    )
}}
{#
    One row per incoming bank payment (our account is the recipient), with how much of it
    settled invoices. matched_amount = Σ applied to invoices (int_payment_allocations);
    unmatched_amount = amount − matched_amount: the whole payment when no invoice could be
    identified, the remainder of an over-payment. Every incoming payment is here, matched
    or not (never dropped); mart_unmatched_payments lists those with a remainder.
#}
with

payments as (
    select * from {{ ref('int_payments') }}
),

invoice_refs as (
    select * from {{ ref('int_payment_invoice_refs') }}
),

allocations as (
    select * from {{ ref('int_payment_allocations') }}
),

applied as (
    select
        allocations.payment_id,
        sum(allocations.applied_amount) as matched_amount,
        count(*) as invoices_settled
    from allocations
    group by allocations.payment_id
),

applied_lists as (
    select
        payment_id,
        {{ dbt.listagg('invoice_id', "', '", 'order by invoice_order_in_payment') }} as invoice_ids
    from allocations
    group by payment_id
),

references_found as (
    select
        invoice_refs.payment_id,
        count(*) as invoice_numbers_parsed,
        sum(case when invoice_refs.is_matched then 1 else 0 end) as invoices_found
    from invoice_refs
    group by invoice_refs.payment_id
),

amounts as (
    select
        payments.*,
        coalesce(applied.matched_amount, 0) as matched_amount,
        payments.amount - coalesce(applied.matched_amount, 0) as unmatched_amount,
        coalesce(applied.invoices_settled, 0) as invoices_settled,
        applied_lists.invoice_ids,
        coalesce(references_found.invoice_numbers_parsed, 0) as invoice_numbers_parsed,
        coalesce(references_found.invoices_found, 0) as invoices_found
    from payments
    left join applied
        on payments.payment_id = applied.payment_id
    left join applied_lists
        on payments.payment_id = applied_lists.payment_id
    left join references_found
        on payments.payment_id = references_found.payment_id
),

final as (
    select
        cast(payment_id as {{ dbt.type_string() }}) as payment_id,
        cast(paid_on as date) as paid_on,
        cast(payer_inn as {{ dbt.type_string() }}) as payer_inn,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(amount as decimal(18, 2)) as amount,
        cast(matched_amount as decimal(18, 2)) as matched_amount,
        cast(unmatched_amount as decimal(18, 2)) as unmatched_amount,
        cast(
            case
                when unmatched_amount = 0 then 'matched'
                when matched_amount > 0 then 'partially_matched'
                else 'unmatched'
            end as {{ dbt.type_string() }}
        ) as match_status,
        cast(
            case
                when unmatched_amount = 0 then null
                when invoice_numbers_parsed = 0 then 'no_invoice_number'
                when invoices_found < invoice_numbers_parsed then 'invoice_not_found'
                when matched_amount = 0 then 'invoice_already_paid'
                else 'overpayment'
            end as {{ dbt.type_string() }}
        ) as unmatched_reason,
        cast(invoice_ids as {{ dbt.type_string() }}) as invoice_ids,
        cast(invoices_settled as integer) as invoices_settled,
        cast(invoice_numbers as {{ dbt.type_string() }}) as invoice_numbers_parsed,
        cast(payer_name as {{ dbt.type_string() }}) as payer_name,
        cast(payer_inn_is_valid as boolean) as payer_inn_is_valid,
        cast(payer_account as {{ dbt.type_string() }}) as payer_account,
        cast(customer_match as {{ dbt.type_string() }}) as customer_match,
        cast(doc_number as {{ dbt.type_string() }}) as doc_number,
        cast(doc_date as date) as doc_date,
        cast(section_type as {{ dbt.type_string() }}) as section_type,
        cast(recipient_account as {{ dbt.type_string() }}) as recipient_account,
        cast(purpose as {{ dbt.type_string() }}) as purpose,
        cast(amount_rub as decimal(18, 2)) as amount_rub,
        cast(_source_file as {{ dbt.type_string() }}) as source_file
    from amounts
)

-- incremental: only the payment_ids whose rows changed (macros/incremental.sql)
{{ incremental_row_diff('final', 'payment_id', 'paid_on') }}
