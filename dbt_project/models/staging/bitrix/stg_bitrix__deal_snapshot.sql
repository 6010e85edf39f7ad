{#
    One row per deal × snapshot date (the date in the file name). A snapshot file delivered
    again with other content keeps the latest load. Timestamps are already local.
#}
with

source as (
    select * from {{ source('bitrix', 'bitrix__deal_snapshot') }}
),

renamed as (
    select
        {{ clean_text('deal_id') }} as deal_id,
        snapshot_date,
        {{ clean_text('title') }} as deal_title,
        {{ clean_text('stage') }} as stage_name,
        amount,
        {{ normalize_currency('currency') }} as currency_iso_code,
        {{ clean_text('responsible') }} as responsible_name,
        {{ normalize_key('responsible') }} as responsible_key,
        created_at,
        modified_at,
        {{ clean_text('source') }} as lead_source,
        {{ clean_text('company') }} as company_name,
        {{ normalize_company_name('company') }} as company_name_key,
        {{ digits_only('inn') }} as inn,
        {{ inn_is_valid(digits_only('inn')) }} as inn_is_valid,
        {{ normalize_phone(first_list_item('phone')) }} as phone_e164,
        {{ normalize_email('email') }} as email,
        {{ clean_text('loss_reason') }} as loss_reason,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', ['deal_id', 'snapshot_date']) }}
),

final as (
    select
        deal_id,
        snapshot_date,
        deal_title,
        stage_name,
        amount,
        currency_iso_code,
        responsible_name,
        responsible_key,
        created_at,
        modified_at,
        lead_source,
        company_name,
        company_name_key,
        inn,
        inn_is_valid,
        phone_e164,
        email,
        loss_reason,
        {{ lineage_columns() }}
    from latest
)

select * from final
