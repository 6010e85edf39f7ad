{#
    Time zone handling. Every timestamp leaves staging as a naive timestamp in the
    company time zone (var `timezone`), so periods are local calendar days/months.
#}

{# A naive UTC timestamp (Salesforce exports) -> naive local timestamp. #}
{% macro utc_to_local(expr) -%}
    {{ return(adapter.dispatch('utc_to_local', 'crm_warehouse')(expr)) }}
{%- endmacro %}

{% macro default__utc_to_local(expr) -%}
    from_utc_timestamp({{ expr }}, '{{ var("timezone") }}')
{%- endmacro %}

{% macro duckdb__utc_to_local(expr) -%}
    cast(timezone('{{ var("timezone") }}', timezone('UTC', cast({{ expr }} as timestamp))) as timestamp)
{%- endmacro %}

{# The current moment as a naive local timestamp. #}
{% macro local_now() -%}
    {{ return(adapter.dispatch('local_now', 'crm_warehouse')()) }}
{%- endmacro %}

{% macro default__local_now() -%}
    from_utc_timestamp(to_utc_timestamp(current_timestamp(), current_timezone()), '{{ var("timezone") }}')
{%- endmacro %}

{% macro duckdb__local_now() -%}
    cast(timezone('{{ var("timezone") }}', now()) as timestamp)
{%- endmacro %}

{#
    The "as of" moment used to age open (censored) visits: var `as_of` (a local date or
    timestamp string; a bare date means 00:00 of that day), else the run's local now.
#}
{% macro as_of_timestamp() -%}
    {%- if var('as_of', none) -%}
        cast('{{ var("as_of") }}' as timestamp)
    {%- else -%}
        {{ local_now() }}
    {%- endif -%}
{%- endmacro %}

{# A date as a timestamp at 00:00 (local). #}
{% macro date_to_timestamp(expr) -%}
    cast({{ expr }} as timestamp)
{%- endmacro %}

{# Fractional days from `start` to `end` (both timestamps): seconds / 86400. #}
{% macro days_between(start, end) -%}
    ({{ dbt.datediff(start, end, 'second') }} / 86400.0)
{%- endmacro %}

{# The first day of the month `expr` (a date or timestamp) falls in, as a date: the month a fact is counted in. #}
{% macro month_start(expr) -%}
    cast({{ dbt.date_trunc('month', expr) }} as date)
{%- endmacro %}
