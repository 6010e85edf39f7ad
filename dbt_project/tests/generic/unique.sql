{#
    dbt's built-in `unique`, blocking: a column declared unique is a key, and a duplicate
    key double-counts in every mart (the project's other data tests warn by default).
#}
{% test unique(model, column_name) %}
{{ config(severity = 'error') }}
{{ adapter.dispatch('test_unique', 'dbt')(model, column_name) }}
{% endtest %}
