{#
    The invoices each incoming payment names: one row per payment × distinct invoice
    number parsed from its purpose (int_payments.invoice_numbers), with the invoice it
    is matched to, or invoice_id null when no invoice fits.

    Matching rule: same invoice number key (invoice_number_key: trailing digits without
    leading zeros, so `№0456` = `456`) AND the same payer: the invoice's resolved
    customer is the payer's, or the invoice counterparty INN equals the payer INN, or —
    for a mistyped INN on either side, which also keeps identity resolution from
    merging them — the counterparty's normalised name (party_name_key) is the payer's or
    is contained in it (bank files may repeat the name: `ООО "Альфа" ООО "Альфа"`).
    Among several candidate invoices of one number: customer / INN matches before
    name-only matches; then (1C numbers repeat every year) the invoice whose year is the
    year written in the purpose (`от 05.03.2026`), then one issued on or before the
    payment date, then the latest issued. A number naming no invoice of the payer stays
    unmatched (third-party payments are not guessed).

    The allocation columns: payment_order = the payment's position in the allocation
    order (paid_on, then payment_id), invoice_order_in_payment = the invoice's position
    among the matched invoices of the payment: the order the purpose lists them in
    (`№ 692 … и № 730` pays 692 first), then — for one number naming several invoices —
    the oldest first (issue date, then invoice_id); int_payment_allocations applies
    payments in this order.
#}
{%- set max_refs = var('payment_max_invoice_refs', 20) | int -%}
with

payments as (
    select * from {{ ref('int_payments') }}
),

invoices as (
    select * from {{ ref('int_invoices') }}
),

positions as (
    {%- for k in range(1, max_refs + 1) %}
        select {{ k }} as reference_position{% if not loop.last %}
            union all{% endif %}
    {%- endfor %}
),

tokens as (
    select
        payments.payment_id,
        positions.reference_position,
        {{ split_part_at('payments.invoice_numbers', "' '", 'positions.reference_position') }} as token
    from payments
    inner join positions
        on
            positions.reference_position
            <= length(payments.invoice_numbers) - length(replace(payments.invoice_numbers, ' ', '')) + 1
    where payments.invoice_numbers is not null
),

-- a run of more than 12 digits is an account or document number, not an invoice number
references_parsed as (
    select
        tokens.payment_id,
        tokens.reference_position,
        {{ try_cast('tokens.token', 'bigint') }} as invoice_number_key
    from tokens
    where length(tokens.token) between 1 and 12
),

distinct_references as (
    select
        payment_id,
        invoice_number_key,
        min(reference_position) as reference_position
    from references_parsed
    group by
        payment_id,
        invoice_number_key
),

candidates as (
    select
        distinct_references.payment_id,
        distinct_references.invoice_number_key,
        distinct_references.reference_position,
        invoices.invoice_id,
        invoices.issued_on,
        invoices.amount as invoice_amount,
        row_number() over (
            partition by distinct_references.payment_id, distinct_references.invoice_number_key
            order by
                case
                    when
                        invoices.customer_id = payments.customer_id or invoices.counterparty_inn = payments.payer_inn
                        then 0
                    else 1
                end,
                case when extract(year from invoices.issued_on) = payments.invoice_year then 0 else 1 end,
                case when invoices.issued_on <= payments.paid_on then 0 else 1 end,
                invoices.issued_on desc,
                invoices.invoice_id asc
        ) as candidate_rank
    from distinct_references
    inner join payments
        on distinct_references.payment_id = payments.payment_id
    inner join invoices
        on
            distinct_references.invoice_number_key = invoices.invoice_number_key
            and (
                payments.customer_id = invoices.customer_id
                or payments.payer_inn = invoices.counterparty_inn
                or {{ dbt.position('invoices.counterparty_name_key', 'payments.payer_name_key') }} > 0
            )
),

matched as (
    select
        distinct_references.payment_id,
        distinct_references.invoice_number_key,
        distinct_references.reference_position,
        candidates.invoice_id,
        candidates.issued_on,
        candidates.invoice_amount
    from distinct_references
    left join candidates
        on
            distinct_references.payment_id = candidates.payment_id
            and distinct_references.invoice_number_key = candidates.invoice_number_key
            and candidates.candidate_rank = 1
),

-- two numbers of one purpose naming the same invoice (`№ 0123` and `123`) count once
deduplicated as (
    select
        matched.*,
        case
            when matched.invoice_id is null then 1
            else row_number() over (
                partition by matched.payment_id, matched.invoice_id
                order by matched.reference_position
            )
        end as invoice_reference_rank
    from matched
),

payment_order as (
    select
        payments.payment_id,
        payments.paid_on,
        payments.amount,
        row_number() over (order by payments.paid_on, payments.payment_id) as payment_order
    from payments
),

final as (
    select
        deduplicated.payment_id,
        deduplicated.reference_position,
        deduplicated.invoice_number_key,
        deduplicated.invoice_id,
        deduplicated.invoice_id is not null as is_matched,
        payment_order.paid_on,
        payment_order.amount as payment_amount,
        deduplicated.invoice_amount,
        deduplicated.issued_on as invoice_issued_on,
        payment_order.payment_order,
        case
            when deduplicated.invoice_id is not null then row_number() over (
                partition by deduplicated.payment_id, deduplicated.invoice_id is not null
                order by deduplicated.reference_position, deduplicated.issued_on, deduplicated.invoice_id
            )
        end as invoice_order_in_payment
    from deduplicated
    inner join payment_order
        on deduplicated.payment_id = payment_order.payment_id
    where deduplicated.invoice_reference_rank = 1
)

select * from final
