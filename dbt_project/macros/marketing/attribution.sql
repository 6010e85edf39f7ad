{#
    The attribution models of int_attribution_credits and mart_channel_roi, in the order
    their rows are written: first_touch, last_touch, linear.
#}
{% macro attribution_models() -%}
    {{ return(['first_touch', 'last_touch', 'linear']) }}
{%- endmacro %}

{# One row per attribution model (column attribution_model), for a CTE to cross join. #}
{% macro attribution_model_rows() -%}
    {%- for attribution_model in attribution_models() %}
    {%- if not loop.first %}
    union all
    {%- endif %}
    select '{{ attribution_model }}' as attribution_model
    {%- endfor %}
{%- endmacro %}
