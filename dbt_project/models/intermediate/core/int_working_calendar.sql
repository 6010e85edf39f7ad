{#
    One row per calendar day (vars calendar_start_date … calendar_end_date): whether it is
    a working day of the configured country and its working hours, plus the running total
    of working minutes before it, which the working-time macros
    (macros/core/working_time.sql) turn into working minutes between any two moments.

    - is_holiday: a public holiday or a non-working day off of var `country` (seed
      `holidays`, day_type public_holiday / day_off);
    - is_transferred_working_day: a weekend day made a working day by decree (day_type
      working_weekend, Russia's "working Saturday");
    - is_working_day: (ISO weekday in var working_weekdays and not a holiday) or a
      transferred working day;
    - working_start / working_end: the day at vars working_hours_start / _end (local
      time), on every day (also non-working ones, where working_minutes is 0);
    - working_minutes_before: working minutes of all earlier days of the calendar.
#}
{%- set bounds = calendar_bounds() -%}
{%- set start_minutes = hhmm_to_minutes(var('working_hours_start', '09:00')) -%}
{%- set end_minutes = hhmm_to_minutes(var('working_hours_end', '18:00')) -%}
{%- if end_minutes <= start_minutes -%}
    {{ exceptions.raise_compiler_error("working_hours_end must be after working_hours_start") }}
{%- endif -%}
with

holidays as (
    select * from {{ ref('holidays') }}
),

day_numbers as (
    {{ dbt.generate_series(bounds[2]) }}
),

days as (
    select
        cast({{ dbt.dateadd('day', 'day_numbers.generated_number - 1', "cast('" ~ bounds[0] ~ "' as date)") }} as date)
            as date_day
    from day_numbers
),

country_days as (
    select
        cast(holidays.calendar_date as date) as date_day,
        max(case when holidays.day_type in ('public_holiday', 'day_off') then 1 else 0 end) as holiday_flag,
        max(case when holidays.day_type = 'working_weekend' then 1 else 0 end) as working_weekend_flag,
        min(case when holidays.day_type in ('public_holiday', 'day_off') then holidays.name end) as holiday_name,
        min(case when holidays.day_type in ('public_holiday', 'day_off') then holidays.local_name end)
            as holiday_local_name
    from holidays
    where upper(holidays.country) = upper('{{ var("country", "RU") }}')
    group by cast(holidays.calendar_date as date)
),

flagged as (
    select
        days.date_day,
        {{ iso_weekday('days.date_day') }} as iso_weekday,
        coalesce(country_days.holiday_flag, 0) = 1 as is_holiday,
        coalesce(country_days.working_weekend_flag, 0) = 1 as is_transferred_working_day,
        country_days.holiday_name,
        country_days.holiday_local_name
    from days
    left join country_days
        on days.date_day = country_days.date_day
),

classified as (
    select
        flagged.*,
        (
            (flagged.iso_weekday in ({{ working_weekdays_list() }}) and not flagged.is_holiday)
            or flagged.is_transferred_working_day
        ) as is_working_day
    from flagged
),

timed as (
    select
        classified.*,
        {{ dbt.dateadd('minute', start_minutes, 'cast(classified.date_day as timestamp)') }} as working_start,
        {{ dbt.dateadd('minute', end_minutes, 'cast(classified.date_day as timestamp)') }} as working_end,
        case when classified.is_working_day then {{ end_minutes - start_minutes }} else 0 end as working_minutes
    from classified
),

final as (
    select
        date_day,
        iso_weekday,
        is_holiday,
        holiday_name,
        holiday_local_name,
        is_transferred_working_day,
        is_working_day,
        cast(working_start as timestamp) as working_start,
        cast(working_end as timestamp) as working_end,
        cast(working_minutes as integer) as working_minutes,
        cast(coalesce(sum(working_minutes) over (
            order by date_day
            rows between unbounded preceding and 1 preceding
        ), 0) as bigint) as working_minutes_before,
        cast(sum(case when is_working_day then 1 else 0 end) over (
            order by date_day
            rows between unbounded preceding and current row
        ) as integer) as working_day_number
    from timed
)

select * from final
