{#
    Calendar helpers for the conformed date dimension and the working calendar.
    Adapter-specific date parts are dispatched (DuckDB / Postgres style by default,
    Spark variants for the later Spark build).
#}

{# ISO day of week, Monday = 1 … Sunday = 7. #}
{% macro iso_weekday(expr) -%}
    {{ return(adapter.dispatch('iso_weekday', 'crm_warehouse')(expr)) }}
{%- endmacro %}

{% macro default__iso_weekday(expr) -%}
    cast(extract(isodow from {{ expr }}) as integer)
{%- endmacro %}

{% macro spark__iso_weekday(expr) -%}
    cast(extract(dayofweek_iso from {{ expr }}) as integer)
{%- endmacro %}

{# ISO 8601 week number (1–53); belongs to iso_year(), not to the calendar year. #}
{% macro iso_week(expr) -%}
    cast(extract(week from {{ expr }}) as integer)
{%- endmacro %}

{# The ISO week-numbering year (2024-12-30 is in ISO week 1 of 2025). #}
{% macro iso_year(expr) -%}
    {{ return(adapter.dispatch('iso_year', 'crm_warehouse')(expr)) }}
{%- endmacro %}

{% macro default__iso_year(expr) -%}
    cast(extract(isoyear from {{ expr }}) as integer)
{%- endmacro %}

{% macro spark__iso_year(expr) -%}
    cast(extract(yearofweek from {{ expr }}) as integer)
{%- endmacro %}

{# A string var `HH:MM` (working_hours_start / _end) -> minutes after midnight, at compile time. #}
{% macro hhmm_to_minutes(value) -%}
    {%- set parts = (value | string).strip().split(':') -%}
    {%- if parts | length < 2 -%}
        {{ exceptions.raise_compiler_error("expected a time as HH:MM, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return((parts[0] | int) * 60 + (parts[1] | int)) }}
{%- endmacro %}

{#
    The calendar's date range, from vars `calendar_start_date` / `calendar_end_date`
    (ISO dates; defaults 2015-01-01 … 2030-12-31, the range of seeds/core/holidays.csv).
    Returns [start, end, number of days].
#}
{% macro calendar_bounds() -%}
    {%- set start = var('calendar_start_date', '2015-01-01') | string -%}
    {%- set end = var('calendar_end_date', '2030-12-31') | string -%}
    {%- set days = (modules.datetime.date.fromisoformat(end) - modules.datetime.date.fromisoformat(start)).days + 1 -%}
    {%- if days < 1 -%}
        {{ exceptions.raise_compiler_error("calendar_end_date must not be before calendar_start_date") }}
    {%- endif -%}
    {{ return([start, end, days]) }}
{%- endmacro %}

{# The configured working weekdays (ISO numbers) as an SQL list: `1, 2, 3, 4, 5`. #}
{% macro working_weekdays_list() -%}
    {%- set days = var('working_weekdays', [1, 2, 3, 4, 5]) -%}
    {%- if days is string -%}
        {%- set days = days.replace('[', '').replace(']', '').split(',') -%}
    {%- endif -%}
    {%- set ns = namespace(items=[]) -%}
    {%- for d in days -%}
        {%- set ns.items = ns.items + [(d | string).strip() | int] -%}
    {%- endfor -%}
    {{ return(ns.items | join(', ')) }}
{%- endmacro %}
