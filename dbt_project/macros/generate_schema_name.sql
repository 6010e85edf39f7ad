{#
    Schemas are exactly `staging`, `intermediate`, `marts` (and `seeds`): a custom schema
    is used as is instead of dbt's default `<target schema>_<custom>`, because analysts and
    Superset address the marts by these names.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
