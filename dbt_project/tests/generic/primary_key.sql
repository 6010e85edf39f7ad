{#
    The column is the table's key: never null and never repeated. Blocking: a missing or
    duplicate key double-counts or drops rows in every mart that reads the table.
    Fails with the offending key values (null counts as one).
#}
{% test primary_key(model, column_name) %}
{{ config(severity = 'error') }}

select
    {{ column_name }} as key_value,
    count(*) as rows_with_key
from {{ model }}
group by {{ column_name }}
having count(*) > 1 or {{ column_name }} is null

{% endtest %}
