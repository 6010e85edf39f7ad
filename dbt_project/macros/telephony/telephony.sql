{#
    Helpers of the telephony models (int_call_legs, int_asterisk_calls, fct_call).
    Portable SQL: the regex test goes through the dispatched regexp_matches_portable
    (macros/core/identity.sql), the rest is dbt's cross-database macros.
#}

{#
    Boolean: the value is an internal number of the PBX — an extension, a queue or a
    ring group: 2 to `max_digits` digits (var internal_number_max_digits, default 6, so
    `101`, `7001` and `PJSIP/211474-…`'s `211474` are internal; a national number has 10+
    digits). Null or text (`s`, `trunk`) is not internal.
#}
{% macro is_internal_number(expr) -%}
    {%- set max_digits = var('internal_number_max_digits', 6) | int -%}
    coalesce({{ regexp_matches_portable('trim(' ~ expr ~ ')', '^[0-9]{2,' ~ max_digits ~ '}$') }}, false)
{%- endmacro %}

{#
    The parts of an Asterisk uniqueid `<epoch seconds>.<channel counter>`
    (`1763706369.4`): the epoch (bigint) and the counter (bigint); null when not numeric.
    Legs of one call created within the same few seconds share (nearly) the same epoch.
#}
{% macro uniqueid_epoch(expr) -%}
    {{ dbt.safe_cast(dbt.split_part(expr, "'.'", 1), dbt.type_bigint()) }}
{%- endmacro %}

{% macro uniqueid_counter(expr) -%}
    {{ dbt.safe_cast(dbt.split_part(expr, "'.'", 2), dbt.type_bigint()) }}
{%- endmacro %}

{#
    Whole seconds from `start_ts` to `end_ts` (bigint), as dbt.datediff counts them.
#}
{% macro seconds_between(start_ts, end_ts) -%}
    cast({{ dbt.datediff(start_ts, end_ts, 'second') }} as {{ dbt.type_bigint() }})
{%- endmacro %}
