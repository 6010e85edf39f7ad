{#
    The list of incoming payments that did not (entirely) settle invoices: every
    fct_payment row with an unmatched remainder, with the reason, for the accountant to
    clear by hand. Unmatched payments and over-payments are listed, never dropped.
#}
with

payments as (
    select * from {{ ref('fct_payment') }}
),

final as (
    select
        payments.payment_id,
        payments.paid_on,
        payments.payer_inn,
        payments.payer_name,
        payments.customer_id,
        payments.amount,
        payments.matched_amount,
        payments.unmatched_amount,
        payments.match_status,
        payments.unmatched_reason,
        payments.invoice_numbers_parsed,
        payments.invoice_ids,
        payments.doc_number,
        payments.doc_date,
        payments.purpose,
        payments.source_file
    from payments
    where payments.unmatched_amount <> 0
)

select * from final
