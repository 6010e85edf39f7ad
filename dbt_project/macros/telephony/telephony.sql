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
    The parts of an Asterisk uniqueid: the epoch (bigint) and the channel counter (bigint)
    of its `<epoch seconds>.<counter>` core. Asterisk writes `1763706369.4`; with
    `systemname` set in asterisk.conf it writes `mainserver-1763706369.4`; some PBXs and
    generators add a suffix (`1770029516.1069-1`). The core is the first run of 9 to 11
    digits, a dot and digits, wherever it stands; a uniqueid without one gives null parts
    (counted in int_unparsed_values) and the leg is still merged by caller and start time.
    Legs of one call created within the same few seconds share (nearly) the same epoch.
#}
{% macro uniqueid_epoch(expr) -%}
    {{ try_cast("nullif(regexp_extract(" ~ expr ~ ", '([0-9]{9,11})[.]([0-9]{1,12})', 1), '')", dbt.type_bigint()) }}
{%- endmacro %}

{% macro uniqueid_counter(expr) -%}
    {{ try_cast("nullif(regexp_extract(" ~ expr ~ ", '([0-9]{9,11})[.]([0-9]{1,12})', 2), '')", dbt.type_bigint()) }}
{%- endmacro %}

{#
    Whole seconds from `start_ts` to `end_ts` (bigint), as dbt.datediff counts them.
#}
{% macro seconds_between(start_ts, end_ts) -%}
    cast({{ dbt.datediff(start_ts, end_ts, 'second') }} as {{ dbt.type_bigint() }})
{%- endmacro %}
