{#
    An aggregate holds the same totals as the facts it sums: for every value of `group_by`
    (columns both tables have, never null), each column of `measures` summed over the
    model equals its expression over `facts` (`{column: expression}`, an aggregate such as
    `sum(open_amount)` or `count(*)`). A group on one side only fails too. Blocking: a
    chart reading the aggregate would show other numbers than the facts.
#}
{% test sums_agree_with_facts(model, facts, group_by, measures) %}
{{ config(severity = 'error') }}

with

aggregate as (
    select
        {{ group_by | join(',\n        ') }},
        {%- for column in measures %}
        sum({{ column }}) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}
    group by {{ group_by | join(', ') }}
),

facts as (
    select
        {{ group_by | join(',\n        ') }},
        {%- for column, expression in measures.items() %}
        {{ expression }} as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ facts }}
    group by {{ group_by | join(', ') }}
)

select
    {%- for key in group_by %}
    coalesce(aggregate.{{ key }}, facts.{{ key }}) as {{ key }},
    {%- endfor %}
    {%- for column in measures %}
    aggregate.{{ column }} as aggregate_{{ column }},
    facts.{{ column }} as facts_{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
from aggregate
full outer join facts
    on {% for key in group_by %}aggregate.{{ key }} = facts.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
where
    {%- for column in measures %}
    {{ 'or ' if not loop.first }}coalesce(aggregate.{{ column }} <> facts.{{ column }}, true)
    {%- endfor %}

{% endtest %}
