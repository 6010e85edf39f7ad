{#
    dbt's built-in `relationships`, blocking: in this project every relationship test joins
    two of the warehouse's own keys (a fact's customer, manager, deal, channel to its
    dimension), and a dangling key drops rows from every join a dashboard makes. A reference
    that comes from the source data as exported (deal -> account) sets `severity: warn` on
    the test itself.
#}
{% test relationships(model, column_name, to, field) %}
{{ config(severity = 'error') }}
{{ adapter.dispatch('test_relationships', 'dbt')(model, column_name, to, field) }}
{% endtest %}
