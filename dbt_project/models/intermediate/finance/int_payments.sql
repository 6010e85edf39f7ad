{#
    One row per incoming bank payment: a payment document of the 1C bank statements
    (stg_onec__bank_payment) whose recipient is our account (the statement's account;
    without a statement account, a document with a receipt date). Transfers between our
    own accounts (payer INN = recipient INN) are not customer payments and are left out.

    - payment_id: hash of the document's identity in staging (section type, number,
      date, amount, payer and recipient accounts).
    - paid_on: the receipt date (ДатаПоступило), else the document date.
    - customer_id: int_customer_keys of the payer as a 1C counterparty
      (onec_counterparty_key: checksum-valid INN, else the normalised payer name), else
      of the payer INN alone.
    - invoice_numbers / invoice_year: the invoice numbers the purpose names
      (purpose_invoice_numbers: `№ 123`, `сч. 123, 124`, `№0456`, `счетам № 7 и № 8`)
      and the year of the invoice date written after them, if any.
    - amount in the reporting currency: statements are in roubles; another reporting
      currency converts at its rate on paid_on.
#}
with

bank_payments as (
    select * from {{ ref('stg_onec__bank_payment') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

currency_rates as (
    select * from {{ ref('int_currency_rates') }}
),

incoming as (
    select
        bank_payments.*,
        coalesce(bank_payments.received_on, bank_payments.doc_date) as paid_on,
        {{ onec_counterparty_key('bank_payments.payer_inn', 'bank_payments.payer_name') }} as payer_key
    from bank_payments
    where {{ is_received_payment('bank_payments') }}
),

final as (
    select
        {{ dbt.hash(
            "concat_ws('|', coalesce(incoming.section_type, ''), coalesce(incoming.doc_number, ''), "
            ~ "coalesce(cast(incoming.doc_date as " ~ dbt.type_string() ~ "), ''), "
            ~ "coalesce(cast(incoming.amount as " ~ dbt.type_string() ~ "), ''), "
            ~ "coalesce(incoming.payer_account, ''), coalesce(incoming.recipient_account, ''))"
        ) }} as payment_id,
        incoming.section_type,
        incoming.doc_number,
        incoming.doc_date,
        incoming.paid_on,
        incoming.payer_inn,
        incoming.payer_inn_is_valid,
        incoming.payer_name,
        {{ party_name_key('incoming.payer_name') }} as payer_name_key,
        incoming.payer_account,
        incoming.payer_key,
        {{ onec_customer_columns() }},
        incoming.recipient_account,
        incoming.amount as amount_rub,
        cast(round(incoming.amount / reporting_rates.rate_to_rub, 2) as decimal(18, 2)) as amount,
        incoming.purpose,
        {{ purpose_invoice_numbers('incoming.purpose') }} as invoice_numbers,
        {{ purpose_invoice_year('incoming.purpose') }} as invoice_year,
        incoming._source_file,
        incoming._line,
        incoming._load_id
    from incoming
    {{ onec_customer_joins('customer_keys', 'incoming.payer_key', 'incoming.payer_inn') }}
    left join currency_rates as reporting_rates
        on {{ rate_on('reporting_rates', 'incoming.paid_on') }}
)

select * from final
