{#
    How incoming payments settle invoices: one row per payment × invoice with a positive
    applied amount.

    Payments are applied in date order (paid_on, then payment_id); each payment goes to
    the invoices its purpose names (int_payment_invoice_refs) in the order listed, each
    up to the invoice's amount still open after the earlier payments:
        applied(p, i) = max(0, min(amount(p) − applied by p to its earlier invoices,
                                   amount(i) − applied to i by earlier payments)).
    So one payment can settle several invoices, part of one (partial payment), or leave
    a remainder when it exceeds what its invoices still owe (over-payment, a duplicate
    payment): the remainder is fct_payment.unmatched_amount. A payment only ever depends
    on earlier payments, so the open amount of an invoice as of any date is its amount
    minus the rows applied on or before that date.

    The sequential rule is computed set-based (portable SQL, no recursion): starting from
    nothing applied, each round recomputes every pair from the previous round's amounts;
    a pair is exact once all pairs before it in the order are, so after as many rounds as
    the longest chain of dependent pairs the result no longer changes (var
    payment_allocation_rounds, default 12). The data test payment_allocation_is_greedy
    checks the final result against the rule.
#}
{%- set rounds = var('payment_allocation_rounds', 12) | int -%}
with

invoice_refs as (
    select * from {{ ref('int_payment_invoice_refs') }}
),

candidates as (
    select
        invoice_refs.payment_id,
        invoice_refs.invoice_id,
        invoice_refs.paid_on,
        cast(invoice_refs.payment_amount as decimal(18, 2)) as payment_amount,
        cast(coalesce(invoice_refs.invoice_amount, 0) as decimal(18, 2)) as invoice_amount,
        invoice_refs.payment_order,
        invoice_refs.invoice_order_in_payment
    from invoice_refs
    where invoice_refs.invoice_id is not null
),

round_0 as (
    select
        candidates.*,
        cast(0 as decimal(18, 2)) as applied_amount
    from candidates
),

{% for r in range(1, rounds + 1) %}
    round_{{ r }} as (
        select
            previous.payment_id,
            previous.invoice_id,
            previous.paid_on,
            previous.payment_amount,
            previous.invoice_amount,
            previous.payment_order,
            previous.invoice_order_in_payment,
            cast(greatest(
                least(
                    previous.payment_amount - coalesce(sum(previous.applied_amount) over (
                        partition by previous.payment_id
                        order by previous.invoice_order_in_payment
                        rows between unbounded preceding and 1 preceding
                    ), 0),
                    previous.invoice_amount - coalesce(sum(previous.applied_amount) over (
                        partition by previous.invoice_id
                        order by previous.payment_order
                        rows between unbounded preceding and 1 preceding
                    ), 0)
                ),
                0
            ) as decimal(18, 2)) as applied_amount
        from round_{{ r - 1 }} as previous
    ),
{% endfor %}

final as (
    select
        payment_id,
        invoice_id,
        paid_on as applied_on,
        applied_amount,
        payment_order,
        invoice_order_in_payment
    from round_{{ rounds }}
    where applied_amount > 0
)

select * from final
