{# Percentiles: DuckDB has exact continuous quantiles; Spark has `percentile`. #}
{% macro percentile_cont(expr, fraction) -%}
    {{ return(adapter.dispatch('percentile_cont', 'crm_warehouse')(expr, fraction)) }}
{%- endmacro %}

{% macro default__percentile_cont(expr, fraction) -%}
    percentile({{ expr }}, {{ fraction }})
{%- endmacro %}

{% macro duckdb__percentile_cont(expr, fraction) -%}
    quantile_cont({{ expr }}, {{ fraction }})
{%- endmacro %}

{#
    The value of `value` on the row with the least `keys` (a list of expressions, compared
    in order) of each group: DuckDB's arg_min, Spark's min_by, over a struct of the keys
    when there are several. Give keys that are never null: engines order a null inside a
    struct differently.
#}
{% macro value_at_min(value, keys) -%}
    {{ return(adapter.dispatch('value_at_min', 'crm_warehouse')(value, keys)) }}
{%- endmacro %}

{% macro default__value_at_min(value, keys) -%}
    min_by({{ value }}, {% if keys | length == 1 %}{{ keys[0] }}{% else %}struct({{ keys | join(', ') }}){% endif %})
{%- endmacro %}

{% macro duckdb__value_at_min(value, keys) -%}
    arg_min({{ value }}, {% if keys | length == 1 %}{{ keys[0] }}{% else %}row({{ keys | join(', ') }}){% endif %})
{%- endmacro %}
