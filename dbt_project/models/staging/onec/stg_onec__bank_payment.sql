{#
    One row per payment document of the 1CClientBankExchange statements. The same
    document appears in overlapping statements: it is identified by section type, number,
    date, amount and both accounts, and kept once (latest load).
#}
with

source as (
    select * from {{ source('onec', 'onec__bank_payment') }}
),

renamed as (
    select
        {{ clean_text('section_type') }} as section_type,
        {{ clean_text('doc_number') }} as doc_number,
        doc_date,
        amount,
        {{ digits_only('payer_account') }} as payer_account,
        {{ clean_text('payer_name') }} as payer_name,
        {{ digits_only('payer_inn') }} as payer_inn,
        {{ inn_is_valid(digits_only('payer_inn')) }} as payer_inn_is_valid,
        {{ digits_only('payer_kpp') }} as payer_kpp,
        {{ digits_only('recipient_account') }} as recipient_account,
        {{ clean_text('recipient_name') }} as recipient_name,
        {{ digits_only('recipient_inn') }} as recipient_inn,
        {{ inn_is_valid(digits_only('recipient_inn')) }} as recipient_inn_is_valid,
        received_on,
        debited_on,
        {{ clean_text('purpose') }} as purpose,
        {{ digits_only('statement_account') }} as statement_account,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', [
        'section_type', 'doc_number', 'doc_date', 'amount', 'payer_account',
        'recipient_account',
    ]) }}
),

final as (
    select
        section_type,
        doc_number,
        doc_date,
        amount,
        payer_account,
        payer_name,
        payer_inn,
        payer_inn_is_valid,
        payer_kpp,
        recipient_account,
        recipient_name,
        recipient_inn,
        recipient_inn_is_valid,
        received_on,
        debited_on,
        purpose,
        statement_account,
        {{ lineage_columns() }}
    from latest
)

select * from final
