{#
    The conformed calendar: one row per day of vars calendar_start_date …
    calendar_end_date, with the working-day flags and working hours of the configured
    country (int_working_calendar).
#}
with

working_calendar as (
    select * from {{ ref('int_working_calendar') }}
),

final as (
    select
        working_calendar.date_day,
        cast(extract(year from working_calendar.date_day) as integer) as year,
        cast(extract(quarter from working_calendar.date_day) as integer) as quarter,
        cast(extract(month from working_calendar.date_day) as integer) as month,
        cast(extract(day from working_calendar.date_day) as integer) as day_of_month,
        {{ iso_year('working_calendar.date_day') }} as iso_year,
        {{ iso_week('working_calendar.date_day') }} as week,
        working_calendar.iso_weekday,
        cast({{ dbt.date_trunc('week', 'working_calendar.date_day') }} as date) as week_start,
        {{ month_start('working_calendar.date_day') }} as month_start,
        cast({{ dbt.date_trunc('quarter', 'working_calendar.date_day') }} as date) as quarter_start,
        cast({{ dbt.date_trunc('year', 'working_calendar.date_day') }} as date) as year_start,
        working_calendar.iso_weekday in (6, 7) as is_weekend,
        working_calendar.is_holiday,
        working_calendar.holiday_name,
        working_calendar.holiday_local_name,
        working_calendar.is_transferred_working_day,
        working_calendar.is_working_day,
        case when working_calendar.is_working_day then working_calendar.working_start end as working_start,
        case when working_calendar.is_working_day then working_calendar.working_end end as working_end,
        working_calendar.working_minutes,
        working_calendar.working_day_number
    from working_calendar
)

select * from final
