{#
    Steps 1 and 2 of identity resolution (see int_customer_identity_links for the whole
    procedure): INN anchoring and the attachment rounds. One row per record placed in a
    customer (`outcome` = placed: anchor_key, the rule, the value and the record it
    matched, the round) and one row per record × candidate customer of an ambiguous
    match (`outcome` = conflict). Records in neither are left for the grouping step.

    1. INN anchors. A record with a checksum-valid INN belongs to customer `inn:<INN>`
       (match_rule `inn`, round 0). Two different valid INNs are two legal entities and
       never merge, whatever else they share.
    2. Attachment rounds (var identity_resolution_rounds, default 4). A record not yet
       placed is compared with the records already placed, by the rules in order
       crm_link, phone, email, company_name. The first rule that finds any placed record
       decides: when everything it finds belongs to one customer, the record joins it
       with that rule; when it finds two or more customers the match is ambiguous and the
       record is merged with none (outcome conflict, one row per candidate). A record
       placed in round k can place others in round k+1 — but only a record that may
       create customers (not a lead): leads attach, they never link others. Leads share
       free-mail addresses, re-used company names and switchboard numbers across
       unrelated people; letting them bridge chains unrelated customers together.
#}
{%- set rounds = var('identity_resolution_rounds', 4) | int -%}
{#-
    On Spark every round is a table of its own (`<this>__round_<k>`, written before the
    model is), because Spark inlines CTEs: round k reads round k-1 three times, so one
    query over all rounds is analysed an exponential number of times (minutes for four
    rounds). The SQL of each round is the same on both engines; DuckDB runs it as one query.
-#}
{%- set rounds_as_tables = target.type == 'spark' -%}
{%- set prelude -%}

records as (
    select * from {{ ref('int_customer_source_records') }}
),

identifiers as (
    select * from {{ ref('int_customer_identifiers') }}
),

matching_identifiers as (
    {{ identity_matching_identifiers('records', 'identifiers') }}
),
{%- endset -%}
{%- set round_zero -%}
-- 1. INN anchors ------------------------------------------------------------------------

placed_0 as (
    select
        records.record_id,
        'inn:' || records.inn as anchor_key,
        'inn' as match_rule,
        records.inn as matched_value,
        cast(null as {{ dbt.type_string() }}) as matched_record,
        0 as match_round
    from records
    where records.inn is not null
),

conflicted_0 as (
    select
        placed_0.record_id,
        placed_0.anchor_key,
        placed_0.match_rule,
        placed_0.matched_value,
        placed_0.matched_record,
        placed_0.match_round
    from placed_0
    where 1 = 0
),
{%- endset -%}
{%- set round_sql = {} -%}
{%- for k in range(1, rounds + 1) -%}
    {%- set one_round -%}


        pending_{{ k }} as (
    select records.record_id
    from records
    left join placed_{{ k - 1 }} as placed
        on placed.record_id = records.record_id
    left join (select distinct record_id from conflicted_{{ k - 1 }}) as conflicted
        on conflicted.record_id = records.record_id
    where placed.record_id is null
        and conflicted.record_id is null
),

candidates_{{ k }} as (
    select
        pending_ids.record_id,
        pending_ids.rule_priority,
        pending_ids.match_kind,
        pending_ids.match_value,
        placed.anchor_key,
        placed_ids.record_id as matched_record
    from pending_{{ k }} as pending
    inner join matching_identifiers as pending_ids
        on pending_ids.record_id = pending.record_id
    inner join matching_identifiers as placed_ids
        on placed_ids.match_kind = pending_ids.match_kind
        and placed_ids.match_value = pending_ids.match_value
        and placed_ids.record_id <> pending_ids.record_id
        and placed_ids.can_anchor
    inner join placed_{{ k - 1 }} as placed
        on placed.record_id = placed_ids.record_id
),

{{ identity_decision_ctes('candidates_' ~ k, 'decisive_' ~ k, 'decided_' ~ k) }},

placed_{{ k }} as (
    select * from placed_{{ k - 1 }}
    union all
    select
        record_id,
        anchor_key,
        match_kind as match_rule,
        match_value as matched_value,
        matched_record,
        {{ k }} as match_round
    from decided_{{ k }}
    where anchor_count = 1
        and evidence_rank = 1
),

conflicted_{{ k }} as (
    select * from conflicted_{{ k - 1 }}
    union all
    select
        record_id,
        anchor_key,
        min(match_kind) as match_rule,
        min(match_value) as matched_value,
        min(matched_record) as matched_record,
        {{ k }} as match_round
    from decided_{{ k }}
    where anchor_count > 1
    group by record_id, anchor_key
),
    {%- endset -%}
    {%- do round_sql.update({k: one_round}) -%}
{%- endfor -%}
{#- round k read back from its table (Spark) -#}
{%- set from_round_table = {} -%}
{%- for k in range(1, rounds + 1) -%}
    {%- set read_back -%}
        placed_{{ k }} as (
    select record_id, anchor_key, match_rule, matched_value, matched_record, match_round
    from {{ this }}__round_{{ k }}
    where outcome = 'placed'
),

conflicted_{{ k }} as (
    select record_id, anchor_key, match_rule, matched_value, matched_record, match_round
    from {{ this }}__round_{{ k }}
    where outcome = 'conflict'
),
    {%- endset -%}
    {%- do from_round_table.update({k: read_back}) -%}
{%- endfor -%}
{%- if rounds_as_tables and execute -%}
    {%- for k in range(1, rounds + 1) -%}
        {%- set round_query -%}
with

{{ prelude }}

{{ round_zero if k == 1 else from_round_table[k - 1] }}

{{ round_sql[k] }}

round_result as (
    select 'placed' as outcome, record_id, anchor_key, match_rule, matched_value, matched_record, match_round
    from placed_{{ k }}
    union all
    select 'conflict' as outcome, record_id, anchor_key, match_rule, matched_value, matched_record, match_round
    from conflicted_{{ k }}
)

select * from round_result
        {%- endset -%}
        {%- do spark_scratch_table(this ~ '__round_' ~ k, round_query) -%}
    {%- endfor %}
{%- endif %}
with

{{ prelude }}

{% if rounds_as_tables -%}
{{ from_round_table[rounds] }}
{%- else -%}
{{ round_zero }}
    {% for k in range(1, rounds + 1) %}
        {{ round_sql[k] }}
    {% endfor %}
{%- endif %}


unioned as (
    select
        'placed' as outcome,
        record_id,
        anchor_key,
        match_rule,
        matched_value,
        matched_record,
        match_round
    from placed_{{ rounds }}

    union all

    select
        'conflict' as outcome,
        record_id,
        anchor_key,
        match_rule,
        matched_value,
        matched_record,
        match_round
    from conflicted_{{ rounds }}
),

final as (
    select
        records.source_system,
        records.source_key,
        unioned.record_id,
        unioned.outcome,
        unioned.anchor_key,
        unioned.match_rule,
        unioned.matched_value,
        unioned.matched_record,
        cast(unioned.match_round as integer) as match_round
    from unioned
    inner join records
        on unioned.record_id = records.record_id
)

select * from final
