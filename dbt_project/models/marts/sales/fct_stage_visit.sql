{{
    config(
        materialized='incremental',
        incremental_strategy=('delete+insert' if target.type == 'duckdb' else 'insert_overwrite'),
        partition_by=(none if target.type == 'duckdb' else none),
        unique_key='deal_id',
        on_schema_change='fail',
        post_hook="{{ incremental_delete_vanished_hook('deal_id', ref('int_deal_stage_changes')) }}",
    )
}}
{#
    One row per visit of a deal to a stage (metric "Stage entry" / "Days in stage").
    - exited_at: the deal's next stage entry; days_in_stage = exited_at − entered_at in
      fractional days (completed visit, is_open = false).
    - The deal's current stage, when it is not a closing stage, is OPEN (censored):
      is_open = true, exited_at null, days_in_stage = age so far as of var `as_of`
      (default: the run's local now). Never average these with completed visits.
    - The final visit of a closed deal (its won / lost stage) is neither: is_open = false,
      exited_at and days_in_stage null — a deal does not "wait" in Closed Won.
    - is_entry_observed = false for a visit whose start was not seen (a Bitrix deal
      already in this stage when it first appeared in the exports): entered_at is then
      only an upper bound of the real entry.
#}
with

stage_changes as (
    select * from {{ ref('int_deal_stage_changes') }}
),

with_exit as (
    select
        stage_changes.*,
        lead(stage_changes.entered_at) over (
            partition by stage_changes.deal_id
            order by stage_changes.visit_number
        ) as next_entered_at
    from stage_changes
),

final as (
    select
        cast(deal_id || ':' || cast(visit_number as {{ dbt.type_string() }}) as {{ dbt.type_string() }})
            as stage_visit_id,
        cast(deal_id as {{ dbt.type_string() }}) as deal_id,
        cast(stage as {{ dbt.type_string() }}) as stage,
        cast(stage_order as integer) as stage_order,
        cast(entered_at as timestamp) as entered_at,
        cast(next_entered_at as timestamp) as exited_at,
        cast(
            case
                when next_entered_at is not null then {{ days_between('entered_at', 'next_entered_at') }}
                when not is_closed_stage then {{ days_between('entered_at', as_of_timestamp()) }}
            end as double
        ) as days_in_stage,
        cast(next_entered_at is null and not is_closed_stage as boolean) as is_open,
        cast(pipeline as {{ dbt.type_string() }}) as pipeline,
        cast(visit_number as integer) as visit_number,
        cast(is_stage_configured as boolean) as is_stage_configured,
        cast(is_won_stage as boolean) as is_won_stage,
        cast(is_lost_stage as boolean) as is_lost_stage,
        cast(entry_basis as {{ dbt.type_string() }}) as entry_basis,
        cast(coalesce(entry_basis, '') <> 'first_snapshot' as boolean) as is_entry_observed
    from with_exit
)

-- incremental: only the deal_ids whose rows changed (macros/incremental.sql)
{{ incremental_row_diff('final', 'deal_id', none) }}
