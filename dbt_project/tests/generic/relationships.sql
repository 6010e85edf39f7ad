{#
    dbt's built-in `relationships`, blocking: a key the warehouse derives (customer, deal,
    invoice, payment, call) that points nowhere drops rows from every join a dashboard
    makes, and is a bug. A reference to a dimension built from one export as it came
    (dim_manager from the CRM's users, dim_product, dim_channel) sets `severity: warn` on
    the test itself: the source may name a user, product or campaign that its export lacks
    or that was quarantined, and that must not stop the publish.
#}
{% test relationships(model, column_name, to, field) %}
{{ config(severity = 'error') }}
{{ adapter.dispatch('test_relationships', 'dbt')(model, column_name, to, field) }}
{% endtest %}
