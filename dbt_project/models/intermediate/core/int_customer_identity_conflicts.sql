{#
    Ambiguous identity matches, reported instead of guessed. One row per conflict ×
    candidate customer:

    - `ambiguous_record`: a source record whose deciding rule (the first of crm_link,
      phone, email, company_name that found anything) matched records of two or more
      different customers: two INN-anchored ones in the attachment rounds
      (int_customer_identity_rounds, outcome conflict), or, for a lead, two groups of
      records without INN (step 4 of int_customer_identity_links). The record was merged
      with none of them (int_customer_identity_links.match_rule = `conflict`): a record
      that creates customers became a customer of its own (resolved_customer_id); a lead
      stays unresolved (null).
    - `shared_key`: a phone number or e-mail found on records of two or more resolved
      customers (a shared switchboard, a group of companies with different INNs). Not a
      wrong merge, but int_customer_keys cannot map that number or address to one
      customer, so calls from it stay without customer. source_system is `phone` /
      `email` and source_key the value.
#}
with

rounds as (
    select * from {{ ref('int_customer_identity_rounds') }}
),

links as (
    select * from {{ ref('int_customer_identity_links') }}
),

identifiers as (
    select * from {{ ref('int_customer_identifiers') }}
),

ambiguous_records as (
    select
        'ambiguous_record' as conflict_type,
        rounds.source_system,
        rounds.source_key,
        rounds.match_rule,
        rounds.matched_value,
        rounds.match_round,
        {{ customer_id_from_anchor('rounds.anchor_key') }} as candidate_customer_id,
        rounds.anchor_key as candidate_anchor_key,
        rounds.matched_record as candidate_record_id,
        links.customer_id as resolved_customer_id
    from rounds
    inner join links
        on rounds.record_id = links.record_id
    where rounds.outcome = 'conflict'
),

lead_conflicts as (
    select
        'ambiguous_record' as conflict_type,
        conflicted.source_system,
        conflicted.source_key,
        conflicted.conflict_rule as match_rule,
        min(conflicted_ids.match_value) as matched_value,
        cast(null as integer) as match_round,
        matched.customer_id as candidate_customer_id,
        matched.anchor_key as candidate_anchor_key,
        min(matched.record_id) as candidate_record_id,
        conflicted.customer_id as resolved_customer_id
    from links as conflicted
    inner join identifiers as conflicted_ids
        on
            conflicted.source_system = conflicted_ids.source_system
            and conflicted.source_key = conflicted_ids.source_key
            and conflicted.conflict_rule = conflicted_ids.match_kind
    inner join identifiers as matched_ids
        on
            conflicted_ids.match_kind = matched_ids.match_kind
            and conflicted_ids.match_value = matched_ids.match_value
    inner join links as matched
        on
            matched_ids.source_system = matched.source_system
            and matched_ids.source_key = matched.source_key
    where
        conflicted.match_rule = 'conflict'
        and conflicted.resolution_step = 'lead_attachment'
        and matched.can_anchor
        and matched.customer_id is not null
        and matched.match_rule <> 'conflict'
    group by
        conflicted.source_system,
        conflicted.source_key,
        conflicted.conflict_rule,
        matched.customer_id,
        matched.anchor_key,
        conflicted.customer_id
),

resolved_keys as (
    select distinct
        identifiers.match_kind,
        identifiers.match_value,
        links.customer_id,
        links.anchor_key,
        links.record_id
    from identifiers
    inner join links
        on
            identifiers.source_system = links.source_system
            and identifiers.source_key = links.source_key
    where
        identifiers.match_kind in ('phone', 'email')
        and links.customer_id is not null
),

shared_values as (
    select
        match_kind,
        match_value
    from resolved_keys
    group by
        match_kind,
        match_value
    having count(distinct customer_id) > 1
),

shared_keys as (
    select
        'shared_key' as conflict_type,
        resolved_keys.match_kind as source_system,
        resolved_keys.match_value as source_key,
        resolved_keys.match_kind as match_rule,
        resolved_keys.match_value as matched_value,
        cast(null as integer) as match_round,
        resolved_keys.customer_id as candidate_customer_id,
        resolved_keys.anchor_key as candidate_anchor_key,
        min(resolved_keys.record_id) as candidate_record_id,
        cast(null as {{ dbt.type_string() }}) as resolved_customer_id
    from resolved_keys
    inner join shared_values
        on
            resolved_keys.match_kind = shared_values.match_kind
            and resolved_keys.match_value = shared_values.match_value
    group by
        resolved_keys.match_kind,
        resolved_keys.match_value,
        resolved_keys.customer_id,
        resolved_keys.anchor_key
),

final as (
    select * from ambiguous_records
    union all
    select * from lead_conflicts
    union all
    select * from shared_keys
)

select * from final
