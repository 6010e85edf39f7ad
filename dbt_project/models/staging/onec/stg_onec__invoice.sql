{#
    One row per invoice. 1C numbers restart every year, so an invoice is its number within
    the year of its date; a re-exported register keeps the latest version.
#}
with

source as (
    select * from {{ source('onec', 'onec__invoice') }}
),

renamed as (
    select
        {{ clean_text('invoice_number') }} as invoice_number,
        issued_on,
        {{ clean_text('counterparty') }} as counterparty_name,
        {{ normalize_company_name('counterparty') }} as counterparty_name_key,
        {{ digits_only('counterparty_inn') }} as counterparty_inn,
        {{ inn_is_valid(digits_only('counterparty_inn')) }} as counterparty_inn_is_valid,
        amount,
        vat,
        {{ normalize_currency('currency') }} as currency_iso_code,
        due_on,
        {{ clean_text('responsible') }} as responsible_name,
        {{ normalize_key('responsible') }} as responsible_key,
        {{ clean_text('deal_ref') }} as deal_ref,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', ['invoice_number', 'extract(year from issued_on)']) }}
),

final as (
    select
        invoice_number,
        issued_on,
        counterparty_name,
        counterparty_name_key,
        counterparty_inn,
        counterparty_inn_is_valid,
        amount,
        vat,
        currency_iso_code,
        due_on,
        responsible_name,
        responsible_key,
        deal_ref,
        {{ lineage_columns() }}
    from latest
)

select * from final
