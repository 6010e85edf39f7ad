{# Conversion rates: units of the currency per one unit of the corporate currency. #}
with

source as (
    select * from {{ source('salesforce', 'salesforce__currency_type') }}
),

renamed as (
    select
        {{ normalize_currency('iso_code') }} as iso_code,
        conversion_rate,
        coalesce(is_corporate, false) as is_corporate,
        {{ lineage_columns() }}
    from source
),

latest as (
    {{ latest_version('renamed', 'iso_code') }}
),

final as (
    select
        iso_code,
        conversion_rate,
        is_corporate,
        {{ lineage_columns() }}
    from latest
)

select * from final
