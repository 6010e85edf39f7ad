{# Text helpers shared by the staging models. Adapter-specific bits are dispatched. #}

{# Replace every match of a regex (DuckDB replaces only the first one without 'g'). #}
{% macro regexp_replace_all(expr, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'crm_warehouse')(expr, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}')
{%- endmacro %}

{% macro duckdb__regexp_replace_all(expr, pattern, replacement) -%}
    regexp_replace({{ expr }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{# Trimmed text, empty -> null. #}
{% macro clean_text(expr) -%}
    nullif(trim({{ expr }}), '')
{%- endmacro %}

{# Digits only, empty -> null. #}
{% macro digits_only(expr) -%}
    nullif({{ regexp_replace_all(expr, '[^0-9]', '') }}, '')
{%- endmacro %}

{# First item of a list of values separated by ',' or ';' (several phones / e-mails in one cell). #}
{% macro first_list_item(expr) -%}
    nullif(trim(split_part(replace({{ expr }}, ';', ','), ',', 1)), '')
{%- endmacro %}

{#
    Matching key for labels typed by people (stage names, sources, loss reasons, manager
    names): lower case, trimmed, `ё` -> `е`, runs of spaces collapsed.
#}
{% macro normalize_key(expr) -%}
    nullif(trim({{ regexp_replace_all("replace(lower(" ~ expr ~ "), 'ё', 'е')", ' +', ' ') }}), '')
{%- endmacro %}

{# Lower-cased, trimmed e-mail (the first one when a cell lists several); no '@' -> null. #}
{% macro normalize_email(expr) -%}
    case
        when {{ first_list_item(expr) }} like '%@%' then lower({{ first_list_item(expr) }})
    end
{%- endmacro %}

{#
    Company name for matching: lower case, punctuation and quotes dropped, legal forms
    (ООО, АО, ИП, LLC, …) removed, spaces collapsed. `ООО "Ромашка"` -> `ромашка`.
#}
{% macro normalize_company_name(expr) -%}
    {%- set letters = regexp_replace_all("replace(lower(" ~ expr ~ "), 'ё', 'е')", '[^a-z0-9а-я]+', ' ') -%}
    {%- set padded = "(' ' || " ~ letters ~ " || ' ')" -%}
    {%- set forms = '(ооо|оао|зао|пао|ао|ип|нко|ано|фгуп|гуп|муп|llc|ltd|inc|gmbh|jsc|corp|co)' -%}
    {%- set once = regexp_replace_all(padded, ' ' ~ forms ~ ' ', ' ') -%}
    {%- set twice = regexp_replace_all(once, ' ' ~ forms ~ ' ', ' ') -%}
    nullif(trim({{ regexp_replace_all(twice, ' +', ' ') }}), '')
{%- endmacro %}

{# ISO currency code: `руб.`, `RUR`, `₽` -> RUB; `$` -> USD; `€` -> EUR. #}
{% macro normalize_currency(expr) -%}
    case
        when {{ clean_text(expr) }} is null then null
        when lower(trim({{ expr }})) in ('rub', 'rur', 'руб', 'руб.', 'рубль', 'рубли', 'рублей', '₽', 'р.') then 'RUB'
        when lower(trim({{ expr }})) in ('usd', '$', 'доллар', 'долл.', 'доллар сша') then 'USD'
        when lower(trim({{ expr }})) in ('eur', '€', 'евро') then 'EUR'
        else upper(trim({{ expr }}))
    end
{%- endmacro %}
