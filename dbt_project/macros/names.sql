{# The first two words of a normalised person name, in alphabetical order (order-insensitive matching). #}
{% macro _name_token_pair(expr) -%}
    case
        when split_part({{ expr }}, ' ', 2) = '' then {{ expr }}
        else least(split_part({{ expr }}, ' ', 1), split_part({{ expr }}, ' ', 2))
            || ' ' || greatest(split_part({{ expr }}, ' ', 1), split_part({{ expr }}, ' ', 2))
    end
{%- endmacro %}

{#
    Person names matched to CRM users, the rules in order: the whole normalised name
    (`exact_name`, rule_priority 1), then the first two words in either order
    (`name_tokens`, 2). One row per name × rule that finds any user: the smallest user_id
    and how many users it found (only a single candidate counts as a match). A select for
    a CTE over `names` (a relation with name_key) and `users` (user_id, user_name_key,
    token_pair = _name_token_pair(user_name_key)).
#}
{% macro user_name_candidates(names, users) -%}
    {%- set rules = [
        ('exact_name', names ~ '.name_key = ' ~ users ~ '.user_name_key'),
        ('name_tokens', users ~ '.token_pair = ' ~ _name_token_pair(names ~ '.name_key')),
    ] -%}
    {%- for rule, matches in rules %}
    select
        {{ names }}.name_key,
        '{{ rule }}' as match_rule,
        {{ loop.index }} as rule_priority,
        min({{ users }}.user_id) as user_id,
        count(distinct {{ users }}.user_id) as candidates
    from {{ names }}
    inner join {{ users }}
        on {{ matches }}
    group by {{ names }}.name_key
    {%- if not loop.last %}

    union all
    {% endif %}
    {%- endfor %}
{%- endmacro %}
