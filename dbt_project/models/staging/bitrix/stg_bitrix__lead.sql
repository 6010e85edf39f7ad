{# One row per lead: its latest export (by export date, then load time, then line). #}
with

source as (
    select * from {{ source('bitrix', 'bitrix__lead') }}
),

renamed as (
    select
        {{ clean_text('lead_id') }} as lead_id,
        export_date,
        {{ clean_text('status') }} as lead_status,
        {{ clean_text('title') }} as lead_title,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        created_at,
        {{ clean_text('source') }} as lead_source,
        {{ normalize_phone(first_list_item('work_phone')) }} as work_phone_e164,
        {{ normalize_phone(first_list_item('mobile_phone')) }} as mobile_phone_e164,
        {{ normalize_email('work_email') }} as work_email,
        {{ normalize_email('private_email') }} as private_email,
        {{ clean_text('responsible') }} as responsible_name,
        {{ normalize_key('responsible') }} as responsible_key,
        modified_at,
        {{ clean_text('company_name') }} as company_name,
        {{ normalize_company_name('company_name') }} as company_name_key,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'lead_id', newest_first='export_date') }}
),

final as (
    select
        lead_id,
        export_date,
        lead_status,
        lead_title,
        first_name,
        last_name,
        created_at,
        lead_source,
        work_phone_e164,
        mobile_phone_e164,
        work_email,
        private_email,
        responsible_name,
        responsible_key,
        modified_at,
        company_name,
        company_name_key,
        {{ lineage_columns() }}
    from latest
)

select * from final
