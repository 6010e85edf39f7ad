{#
    One row per 1C invoice (stg_onec__invoice: the latest version of a number within the
    year of its date), with its keys resolved and its amounts in the reporting currency.

    - invoice_id = `<number>/<year of issue>`: 1C restarts numbering every year, so the
      number alone repeats (`123/2026`).
    - customer_id: int_customer_keys of the 1C counterparty (onec_counterparty_key:
      checksum-valid INN, else the normalised counterparty name), else of the INN alone.
    - manager_id: the «Ответственный» through int_manager_keys (responsible_name), else
      `name:<normalised name>` as everywhere else.
    - deal_id: the «Сделка» reference as fct_deal builds deal ids: a Salesforce Id (15
      or 18 characters) -> `sf:<15-character Id>`, a number -> `bx:<ID>`, an id already
      written `sf:…` / `bx:…` as is; null when that deal does not exist (deal_ref keeps
      the text).
    - amount (with VAT) and vat in the reporting currency: amount in the invoice
      currency × rate_to_rub(currency, issued_on) / rate_to_rub(reporting currency,
      issued_on), the latest rate on or before the invoice date (int_currency_rates);
      no currency = the reporting currency; no rate = null amounts (has_fx_rate false).
      Missing VAT is estimated with var vat_rate: amount × rate / (1 + rate), to the cent
      (vat_in_gross), then converted like the amount. Conversions are exact decimal
      products rounded to the cent (money_at_rate), the same on every engine.
#}
with

invoices as (
    select * from {{ ref('stg_onec__invoice') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

manager_keys as (
    select * from {{ ref('int_manager_keys') }}
),

deals as (
    select * from {{ ref('int_deals') }}
),

currency_rates as (
    select * from {{ ref('int_currency_rates') }}
),

keyed as (
    select
        invoices.*,
        invoices.invoice_number
        || '/'
        || cast(extract(year from invoices.issued_on) as {{ dbt.type_string() }}) as invoice_id,
        {{ invoice_number_key('invoices.invoice_number') }} as invoice_number_key,
        {{ onec_counterparty_key('invoices.counterparty_inn', 'invoices.counterparty_name') }} as counterparty_key,
        coalesce(invoices.currency_iso_code, '{{ var("reporting_currency") }}') as currency,
        case
            when invoices.deal_ref like 'sf:%' or invoices.deal_ref like 'bx:%' then invoices.deal_ref
            when {{ digits_only('invoices.deal_ref') }} = invoices.deal_ref then 'bx:' || invoices.deal_ref
            when length(invoices.deal_ref) in (15, 18) then 'sf:' || {{ sf_id15('invoices.deal_ref') }}
        end as deal_key
    from invoices
),

converted as (
    select
        keyed.*,
        invoice_rates.rate_to_rub / reporting_rates.rate_to_rub as fx_rate
    from keyed
    left join currency_rates as invoice_rates
        on {{ rate_on('invoice_rates', 'keyed.issued_on', currency='keyed.currency') }}
    left join currency_rates as reporting_rates
        on {{ rate_on('reporting_rates', 'keyed.issued_on') }}
),

resolved as (
    select
        converted.invoice_id,
        converted.invoice_number,
        converted.invoice_number_key,
        converted.issued_on,
        coalesce(converted.due_on, converted.issued_on) as due_on,
        converted.due_on is null as is_due_date_missing,
        {{ onec_customer_columns() }},
        converted.counterparty_key,
        converted.counterparty_name,
        {{ party_name_key('converted.counterparty_name') }} as counterparty_name_key,
        converted.counterparty_inn,
        converted.counterparty_inn_is_valid,
        coalesce(
            manager_keys.manager_id,
            case when converted.responsible_key is not null then 'name:' || converted.responsible_key end
        ) as manager_id,
        converted.responsible_name,
        deals.deal_id,
        converted.deal_ref,
        converted.currency,
        converted.amount as amount_original,
        coalesce(converted.vat, {{ vat_in_gross('converted.amount') }}) as vat_original,
        converted.vat is null as is_vat_estimated,
        cast(converted.fx_rate as decimal(18, 6)) as fx_rate,
        converted.fx_rate is not null as has_fx_rate,
        {{ money_at_rate('converted.amount', 'converted.fx_rate') }} as amount,
        {{ money_at_rate("coalesce(converted.vat, " ~ vat_in_gross('converted.amount') ~ ")", 'converted.fx_rate') }}
            as vat,
        converted._source_file,
        converted._line,
        converted._load_id
    from converted
    {{ onec_customer_joins('customer_keys', 'converted.counterparty_key', 'converted.counterparty_inn') }}
    left join manager_keys
        on
            manager_keys.source_system = 'responsible_name'
            and converted.responsible_key = manager_keys.source_key
    left join deals
        on converted.deal_key = deals.deal_id
),

final as (
    select
        resolved.*,
        cast(resolved.amount - resolved.vat as decimal(18, 2)) as amount_net
    from resolved
)

select * from final
