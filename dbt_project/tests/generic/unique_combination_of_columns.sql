{#
    The combination of the given columns (or expressions) is unique: the primary key of a
    table whose grain is several columns (a small stand-in for dbt_utils' test, which
    cannot be installed offline). Blocking: a duplicate key double-counts in every mart.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
{{ config(severity = 'error') }}

select
    {{ combination_of_columns | join(',\n    ') }},
    count(*) as rows_with_key
from {{ model }}
group by
    {{ combination_of_columns | join(',\n    ') }}
having count(*) > 1

{% endtest %}
