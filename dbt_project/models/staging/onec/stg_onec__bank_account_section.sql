{# Account sections of the bank statements: balances the loaded payments reconcile with. #}
with

source as (
    select * from {{ source('onec', 'onec__bank_account_section') }}
),

renamed as (
    select
        {{ digits_only('account') }} as account,
        period_start,
        period_end,
        opening_balance,
        total_received,
        total_debited,
        closing_balance,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', ['account', 'period_start', 'period_end']) }}
),

final as (
    select
        account,
        period_start,
        period_end,
        opening_balance,
        total_received,
        total_debited,
        closing_balance,
        {{ lineage_columns() }}
    from latest
)

select * from final
