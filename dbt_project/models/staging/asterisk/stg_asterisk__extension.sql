{# PBX extension -> CRM (Salesforce) user. #}
with

source as (
    select * from {{ source('asterisk', 'asterisk__extension') }}
),

renamed as (
    select
        {{ clean_text('extension') }} as extension,
        {{ sf_id15('user_id') }} as user_id,
        {{ clean_text('name') }} as employee_name,
        {{ normalize_key('name') }} as employee_name_key,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'extension') }}
),

final as (
    select
        extension,
        user_id,
        employee_name,
        employee_name_key,
        {{ lineage_columns() }}
    from latest
)

select * from final
