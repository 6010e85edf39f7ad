{#
    Validity intervals of the dated exchange rates (seed currency_rates): one row per
    currency × date the rate changes, valid from `valid_from` (inclusive) to `valid_to`
    (exclusive; null = still valid). An amount dated D converts at the row with
    valid_from <= D < valid_to: the latest rate on or before D. The reporting currency
    (var `reporting_currency`) gets rate_to_reporting = 1 from its own rates; RUB needs
    no rows (rate 1 from the beginning of time).
#}
with

currency_rates as (
    select * from {{ ref('currency_rates') }}
),

cleaned as (
    select
        {{ normalize_currency('currency_rates.currency') }} as currency,
        cast(currency_rates.date as date) as valid_from,
        cast(currency_rates.rate_to_rub as decimal(18, 6)) as rate_to_rub
    from currency_rates
    where currency_rates.rate_to_rub > 0
),

with_rouble as (
    select * from cleaned
    where currency <> 'RUB'
    union all
    select
        'RUB' as currency,
        cast('1900-01-01' as date) as valid_from,
        cast(1 as decimal(18, 6)) as rate_to_rub
),

final as (
    select
        currency,
        valid_from,
        lead(valid_from) over (partition by currency order by valid_from) as valid_to,
        rate_to_rub
    from with_rouble
)

select * from final
