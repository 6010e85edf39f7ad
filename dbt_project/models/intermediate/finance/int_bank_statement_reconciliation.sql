{#
    Bank statements reconciled with the payment documents loaded from them: one row per
    account section (account × statement period). The bank's own totals
    (ВсегоПоступило / ВсегоСписано) are compared with the sums of the loaded documents
    of that account and period: received = documents whose recipient account is the
    section's account, dated by the receipt date (else the document date); debited =
    documents whose payer account is the section's account, dated by the debit date
    (else the document date). Balances must chain: opening + received − debited =
    closing. A difference means documents were lost (quarantined rows, a cut-off file)
    or delivered twice with different content; the warn-level test on is_reconciled
    reports it.
#}
with

sections as (
    select * from {{ ref('stg_onec__bank_account_section') }}
),

bank_payments as (
    select * from {{ ref('stg_onec__bank_payment') }}
),

{#- the documents loaded for each statement section: received on its account, debited from it #}
{%- for side, account_column, date_column in [
    ('received', 'recipient_account', 'received_on'),
    ('debited', 'payer_account', 'debited_on'),
] %}
    {{ side }} as (
        select
            sections.account,
            sections.period_start,
            sections.period_end,
            sum(bank_payments.amount) as loaded_{{ side }},
            count(*) as {{ side }}_documents
        from sections
        inner join bank_payments
            on
                sections.account = bank_payments.{{ account_column }}
                and coalesce(bank_payments.{{ date_column }}, bank_payments.doc_date) >= sections.period_start
                and coalesce(bank_payments.{{ date_column }}, bank_payments.doc_date) <= sections.period_end
        group by
            sections.account,
            sections.period_start,
            sections.period_end
    ),
{% endfor %}

compared as (
    select
        sections.account,
        sections.period_start,
        sections.period_end,
        sections.opening_balance,
        sections.total_received,
        sections.total_debited,
        sections.closing_balance,
        coalesce(received.loaded_received, 0) as loaded_received,
        coalesce(debited.loaded_debited, 0) as loaded_debited,
        coalesce(received.received_documents, 0) as received_documents,
        coalesce(debited.debited_documents, 0) as debited_documents,
        sections._source_file
    from sections
    left join received
        on
            sections.account = received.account
            and sections.period_start = received.period_start
            and sections.period_end = received.period_end
    left join debited
        on
            sections.account = debited.account
            and sections.period_start = debited.period_start
            and sections.period_end = debited.period_end
),

final as (
    select
        compared.*,
        compared.loaded_received - coalesce(compared.total_received, 0) as received_difference,
        compared.loaded_debited - coalesce(compared.total_debited, 0) as debited_difference,
        coalesce(compared.opening_balance, 0) + coalesce(compared.total_received, 0)
        - coalesce(compared.total_debited, 0) - coalesce(compared.closing_balance, 0) as balance_difference,
        (
            compared.loaded_received = coalesce(compared.total_received, 0)
            and compared.loaded_debited = coalesce(compared.total_debited, 0)
            and coalesce(compared.opening_balance, 0) + coalesce(compared.total_received, 0)
            - coalesce(compared.total_debited, 0) = coalesce(compared.closing_balance, 0)
        ) as is_reconciled
    from compared
)

select * from final
