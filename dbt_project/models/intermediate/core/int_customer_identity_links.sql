{#
    Identity resolution: every source record of int_customer_source_records -> the
    resolved customer it belongs to, with the rule that put it there. One row per record.
    Steps 1 and 2 are int_customer_identity_rounds; steps 3 and 4 and the assembly are here.

    1. INN anchors. A record with a checksum-valid INN belongs to customer `inn:<INN>`
       (match_rule `inn`, round 0). Two different valid INNs are two legal entities and
       never merge, whatever else they share.
    2. Attachment rounds (var identity_resolution_rounds, default 4). A record not yet
       placed is compared with the records already placed, by the rules in order
       crm_link, phone, email, company_name. The first rule that finds any placed record
       decides: when everything it finds belongs to one customer, the record joins it
       with that rule (matched_value / matched_record say through what); when it finds
       two or more customers, the match is ambiguous: the record is reported in
       int_customer_identity_conflicts and merged with none of them (match_rule
       `conflict`; a record that may create customers becomes a customer of its own).
       Only records that may create customers (not leads) are matched against: a lead
       attaches, it never links two other records.
    3. Grouping of the rest. Records that may create customers and are still unplaced
       share no key with an INN customer; they are grouped transitively by shared
       crm_link / phone / e-mail / company name (connected components by min-label
       propagation, var identity_propagation_rounds, default 6, each round two hops).
       The component's anchor is its best-ranked record (record_rank, then key), with
       match_rule `own_record`; the others join by the best rule they share with another
       member.
    4. Leads still unplaced attach to the groups of step 3 like in step 2 (the first rule
       that finds a group decides; two groups = `conflict`, attached to none); a lead
       matching no group belongs to no customer (customer_id null, `unmatched`).

    customer_id = md5(anchor_key): `inn:<INN>` or `<source_system>:<source_key>` of the
    anchor record, stable across runs as long as that record exists.
#}
{%- set propagation_rounds = var('identity_propagation_rounds', 6) | int -%}
{#- the CTEs holding each step's outcomes (final unions them) -#}
{%- set resolution_steps = [
    ('rounds', 'placed'),
    ('rounds', 'conflicts_resolved'),
    ('grouping', 'grouped'),
    ('lead_attachment', 'leads'),
] -%}
{#-
    On Spark every propagation round's labels are a table of their own
    (`<this>__labels_<r>`, written before the model is), because Spark inlines CTEs and
    round r reads round r-1 twice: one query over all rounds is analysed an exponential
    number of times. The SQL of each round is the same on both engines; DuckDB runs it as
    one query.
-#}
{%- set rounds_as_tables = target.type == 'spark' -%}
{%- set prelude -%}

records as (
    select * from {{ ref('int_customer_source_records') }}
),

identifiers as (
    select * from {{ ref('int_customer_identifiers') }}
),

rounds as (
    select * from {{ ref('int_customer_identity_rounds') }}
),

matching_identifiers as (
    {{ identity_matching_identifiers('records', 'identifiers') }}
),

placed as (
    select
        record_id,
        anchor_key,
        match_rule,
        matched_value,
        matched_record,
        cast(null as {{ dbt.type_string() }}) as conflict_rule,
        match_round
    from rounds
    where outcome = 'placed'
),

conflicted_records as (
    select
        record_id,
        min(match_rule) as conflict_rule,
        min(matched_value) as conflict_value,
        min(match_round) as match_round
    from rounds
    where outcome = 'conflict'
    group by record_id
),

free_records as (
    select records.*
    from records
    left join placed
        on placed.record_id = records.record_id
    left join conflicted_records
        on conflicted_records.record_id = records.record_id
    where placed.record_id is null
        and conflicted_records.record_id is null
),

-- 3. Grouping of the rest (records that may create customers) -------------------------

group_identifiers as (
    select matching_identifiers.*
    from matching_identifiers
    inner join free_records
        on free_records.record_id = matching_identifiers.record_id
    where free_records.can_anchor
),

{# A label sorts by rank, then key: `<rank>:<record_id>` (record_rank is one digit). #}
labels_0 as (
    select
        free_records.record_id,
        cast(free_records.record_rank as {{ dbt.type_string() }}) || ':' || free_records.record_id as label
    from free_records
    where free_records.can_anchor
),
{%- endset -%}
{%- set round_sql = {} -%}
{%- for r in range(1, propagation_rounds + 1) -%}
{%- set one_round -%}


identifier_labels_{{ r }} as (
    select
        group_identifiers.match_kind,
        group_identifiers.match_value,
        min(labels.label) as label
    from group_identifiers
    inner join labels_{{ r - 1 }} as labels
        on labels.record_id = group_identifiers.record_id
    group by
        group_identifiers.match_kind,
        group_identifiers.match_value
),

labels_{{ r }} as (
    select
        labels.record_id,
        min(
            case
                when identifier_labels.label < labels.label then identifier_labels.label
                else labels.label
            end
        ) as label
    from labels_{{ r - 1 }} as labels
    left join group_identifiers
        on group_identifiers.record_id = labels.record_id
    left join identifier_labels_{{ r }} as identifier_labels
        on identifier_labels.match_kind = group_identifiers.match_kind
        and identifier_labels.match_value = group_identifiers.match_value
    group by labels.record_id
),
{%- endset -%}
{%- do round_sql.update({r: one_round}) -%}
{%- endfor -%}
{%- if rounds_as_tables and execute -%}
{%- for r in range(1, propagation_rounds + 1) -%}
        {%- set round_query -%}
with

{{ prelude }}
{% if r > 1 %}
labels_{{ r - 1 }} as (
    select record_id, label from {{ this }}__labels_{{ r - 1 }}
),
{% endif %}
{{ round_sql[r] }}

round_result as (
    select record_id, label from labels_{{ r }}
)

select * from round_result
        {%- endset -%}
        {%- do spark_scratch_table(this ~ '__labels_' ~ r, round_query) -%}
    {%- endfor %}
{%- endif %}
with

{{ prelude }}
{% if rounds_as_tables %}
labels_{{ propagation_rounds }} as (
    select record_id, label from {{ this }}__labels_{{ propagation_rounds }}
),
{% else %}
{% for r in range(1, propagation_rounds + 1) %}
{{ round_sql[r] }}
{% endfor %}
{%- endif %}


components as (
    select
        labels.record_id,
        labels.label,
        substr(labels.label, 3) as anchor_record_id
    from labels_{{ propagation_rounds }} as labels
),

component_evidence as (
    select
        own.record_id,
        own.match_kind,
        own.match_value,
        other.record_id as matched_record,
        row_number() over (
            partition by own.record_id
            order by own.rule_priority, own.match_value, other.record_id
        ) as evidence_rank
    from group_identifiers as own
    inner join components as own_component
        on own.record_id = own_component.record_id
    inner join group_identifiers as other
        on
            own.match_kind = other.match_kind
            and own.match_value = other.match_value
            and own.record_id <> other.record_id
    inner join components as other_component
        on
            other.record_id = other_component.record_id
            and own_component.label = other_component.label
),

grouped as (
    select
        components.record_id,
        components.anchor_record_id as anchor_key,
        case
            when components.anchor_record_id = components.record_id then 'own_record'
            else component_evidence.match_kind
        end as match_rule,
        case
            when components.anchor_record_id <> components.record_id then component_evidence.match_value
        end as matched_value,
        case
            when components.anchor_record_id <> components.record_id then component_evidence.matched_record
        end as matched_record,
        cast(null as {{ dbt.type_string() }}) as conflict_rule,
        cast(null as integer) as match_round
    from components
    left join component_evidence
        on
            components.record_id = component_evidence.record_id
            and component_evidence.evidence_rank = 1
),

-- 4. Leads attach to the groups ---------------------------------------------------------

lead_candidates as (
    select
        lead_ids.record_id,
        lead_ids.rule_priority,
        lead_ids.match_kind,
        lead_ids.match_value,
        components.anchor_record_id as anchor_key,
        group_identifiers.record_id as matched_record
    from free_records
    inner join matching_identifiers as lead_ids
        on free_records.record_id = lead_ids.record_id
    inner join group_identifiers
        on
            lead_ids.match_kind = group_identifiers.match_kind
            and lead_ids.match_value = group_identifiers.match_value
    inner join components
        on group_identifiers.record_id = components.record_id
    where not free_records.can_anchor
),

{{ identity_decision_ctes('lead_candidates', 'lead_decisive', 'lead_decided') }},

leads as (
    select
        free_records.record_id,
        case when lead_decided.anchor_count = 1 then lead_decided.anchor_key end as anchor_key,
        case
            when lead_decided.anchor_count = 1 then lead_decided.match_kind
            when lead_decided.anchor_count > 1 then 'conflict'
            else 'unmatched'
        end as match_rule,
        lead_decided.match_value as matched_value,
        case when lead_decided.anchor_count = 1 then lead_decided.matched_record end as matched_record,
        case when lead_decided.anchor_count > 1 then lead_decided.match_kind end as conflict_rule,
        cast(null as integer) as match_round
    from free_records
    left join lead_decided
        on
            free_records.record_id = lead_decided.record_id
            and lead_decided.evidence_rank = 1
    where not free_records.can_anchor
),

-- All records ---------------------------------------------------------------------------

conflicts_resolved as (
    select
        records.record_id,
        case when records.can_anchor then records.record_id end as anchor_key,
        'conflict' as match_rule,
        conflicted_records.conflict_value as matched_value,
        cast(null as {{ dbt.type_string() }}) as matched_record,
        conflicted_records.conflict_rule,
        conflicted_records.match_round
    from conflicted_records
    inner join records
        on conflicted_records.record_id = records.record_id
),

-- every record with the step that resolved it (match_round only for the rounds)
resolved as (
    {%- for step, outcomes in resolution_steps %}
    select
        record_id,
        anchor_key,
        match_rule,
        matched_value,
        matched_record,
        conflict_rule,
        match_round,
        '{{ step }}' as resolution_step
    from {{ outcomes }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

final as (
    select
        records.source_system,
        records.source_key,
        records.record_id,
        case
            when resolved.anchor_key is not null then {{ customer_id_from_anchor('resolved.anchor_key') }}
        end as customer_id,
        resolved.anchor_key,
        coalesce(resolved.anchor_key like 'inn:%', false) as is_inn_anchored,
        resolved.match_rule,
        resolved.matched_value,
        resolved.matched_record,
        resolved.conflict_rule,
        cast(resolved.match_round as integer) as match_round,
        resolved.resolution_step,
        records.record_rank,
        records.can_anchor,
        records.record_name,
        records.inn
    from records
    inner join resolved
        on records.record_id = resolved.record_id
)

select * from final
