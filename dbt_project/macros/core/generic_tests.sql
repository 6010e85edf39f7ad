{#
    Generic data tests of the core models (project-level, no dbt hub packages).
#}

{#
    Fails with every row for which `expression` is false. Like a SQL CHECK constraint, a
    row whose expression is null passes: a null that a model documents as meaningful (a
    month with no leads has no estimated lost value) is not a failure; a column that must
    be filled has its own not_null test. A content rule: warns (the project default).
#}
{% test rows_satisfy(model, expression) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}

{#
    Identity resolution converged (applied to int_customer_identity_links):
    - records that may create customers, outside INN-anchored customers and not
      conflicts, that share a matching key (crm_link, phone, email, company_name) ended
      in the same customer (else var identity_propagation_rounds is too small for the
      longest chain in the data);
    - no record outside INN-anchored customers (and not a conflict) shares a matching
      key with a record of an INN-anchored customer that may create customers (it would
      have been attached or reported as a conflict in one more round: var
      identity_resolution_rounds is too small).
    Fails with the offending pairs.
#}
{% test identity_resolution_converged(model, identifiers) %}
    {{ config(severity = 'error') }}
    with

    links as (
        select * from {{ model }}
    ),

    identifiers as (
        select * from {{ identifiers }}
    ),

    keyed as (
        select
            identifiers.match_kind,
            identifiers.match_value,
            links.record_id,
            links.customer_id,
            links.is_inn_anchored,
            links.match_rule,
            links.can_anchor
        from identifiers
        inner join links
            on links.source_system = identifiers.source_system
            and links.source_key = identifiers.source_key
        where identifiers.match_kind in ('crm_link', 'phone', 'email', 'company_name')
    ),

    free_keys as (
        select *
        from keyed
        where not is_inn_anchored
            and match_rule <> 'conflict'
    ),

    anchored_keys as (
        select *
        from keyed
        where is_inn_anchored
            and can_anchor
    )

    select
        a.match_kind,
        a.match_value,
        a.record_id as a_record_id,
        a.customer_id as a_customer_id,
        b.record_id as b_record_id,
        b.customer_id as b_customer_id
    from free_keys as a
    inner join free_keys as b
        on a.match_kind = b.match_kind
        and a.match_value = b.match_value
        and a.customer_id < b.customer_id
    where a.can_anchor
        and b.can_anchor

    union all

    select
        a.match_kind,
        a.match_value,
        a.record_id as a_record_id,
        a.customer_id as a_customer_id,
        b.record_id as b_record_id,
        b.customer_id as b_customer_id
    from free_keys as a
    inner join anchored_keys as b
        on a.match_kind = b.match_kind
        and a.match_value = b.match_value
{% endtest %}
