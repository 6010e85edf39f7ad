{# The first two words of a normalised person name, in alphabetical order (order-insensitive matching). #}
{% macro _name_token_pair(expr) -%}
    case
        when split_part({{ expr }}, ' ', 2) = '' then {{ expr }}
        else least(split_part({{ expr }}, ' ', 1), split_part({{ expr }}, ' ', 2))
            || ' ' || greatest(split_part({{ expr }}, ' ', 1), split_part({{ expr }}, ' ', 2))
    end
{%- endmacro %}
