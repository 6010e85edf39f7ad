{#
    One row per stage entry of a deal (a "visit" starts here), both CRMs unioned.

    Salesforce: OpportunityHistory rows of live opportunities, ordered by CreatedDate (then
    Id). The opportunity's current stage is appended as a last event (at LastModifiedDate)
    so that the last visit is always the deal's current stage; an opportunity without
    history gets one entry at its creation. Consecutive events with the same stage
    collapse into one entry (history also records amount / close date changes); a stage
    left and later re-entered is a new entry (a revisit).

    Bitrix: no history, only daily snapshots. A stage entry is derived from the first
    snapshot that shows the deal in a stage after a snapshot showing another one. Its
    time is the `modified_at` of that snapshot row when it lies in the window the change
    must have happened in — on or after the previous snapshot's date (00:00 local), before
    the end of this snapshot's date, and later than the previous row's `modified_at` —
    because the change is then the row's last modification (basis `modified_at`);
    otherwise the snapshot date at 00:00 local (basis `snapshot_date`). The first snapshot
    of a deal: its `created_at` when the deal was created since the previous export (for
    the very first export: since the day before) (basis `created_at`); else the deal
    existed unseen — e.g. it was already in the pipeline when exports began — and the
    entry is not observed (basis `first_snapshot`, a left-censored visit that the funnel
    does not count as an entry): entered_at is then the row's `modified_at` (the entry
    happened no later than the last modification) or, failing that, the snapshot date.

    Stage names are mapped to the configured stage label (case-insensitive, ё = е, Bitrix
    codes accepted); a stage not in the configuration keeps its raw name with
    stage_order null and is_stage_configured false.
#}
with

opportunity_history as (
    select * from {{ ref('stg_salesforce__opportunity_history') }}
),

opportunities as (
    select * from {{ ref('stg_salesforce__opportunity') }}
),

deal_snapshots as (
    select * from {{ ref('stg_bitrix__deal_snapshot') }}
),

pipeline_stages as (
    select * from {{ ref('int_pipeline_stages') }}
),

-- every label a stage is known by (its name, and its code where configured)
stage_labels as (
    {{ stage_labels('pipeline_stages') }}
),

-- Salesforce ------------------------------------------------------------------------

history_bounds as (
    select
        opportunity_history.opportunity_id,
        max(opportunity_history.created_at) as last_history_at
    from opportunity_history
    group by opportunity_history.opportunity_id
),

salesforce_events as (
    select
        opportunity_history.opportunity_id as source_deal_id,
        opportunity_history.stage_name as stage_raw,
        opportunity_history.created_at as event_at,
        0 as event_kind,
        opportunity_history.history_id as event_tiebreak,
        'history' as entry_basis
    from opportunity_history
    inner join opportunities
        on opportunity_history.opportunity_id = opportunities.opportunity_id
    where
        opportunity_history.stage_name is not null
        and opportunity_history.created_at is not null

    union all

    select
        opportunities.opportunity_id as source_deal_id,
        opportunities.stage_name as stage_raw,
        case
            when history_bounds.last_history_at is null then opportunities.created_at
            when opportunities.last_modified_at > history_bounds.last_history_at then opportunities.last_modified_at
            else history_bounds.last_history_at
        end as event_at,
        1 as event_kind,
        '' as event_tiebreak,
        case
            when history_bounds.last_history_at is null then 'opportunity_created'
            else 'opportunity_current'
        end as entry_basis
    from opportunities
    left join history_bounds
        on opportunities.opportunity_id = history_bounds.opportunity_id
    where opportunities.stage_name is not null
),

salesforce_keyed as (
    select
        salesforce_events.*,
        {{ normalize_key('salesforce_events.stage_raw') }} as stage_key
    from salesforce_events
),

salesforce_mapped as (
    select
        salesforce_keyed.*,
        coalesce(stage_labels.stage, salesforce_keyed.stage_raw) as stage
    from salesforce_keyed
    left join stage_labels
        on
            stage_labels.pipeline = 'salesforce'
            and salesforce_keyed.stage_key = stage_labels.label_key
),

salesforce_sequenced as (
    select
        salesforce_mapped.*,
        lag(salesforce_mapped.stage) over (
            partition by salesforce_mapped.source_deal_id
            order by salesforce_mapped.event_at, salesforce_mapped.event_kind, salesforce_mapped.event_tiebreak
        ) as previous_stage,
        row_number() over (
            partition by salesforce_mapped.source_deal_id
            order by salesforce_mapped.event_at, salesforce_mapped.event_kind, salesforce_mapped.event_tiebreak
        ) as event_number
    from salesforce_mapped
),

salesforce_changes as (
    select
        'salesforce' as source_system,
        source_deal_id,
        stage,
        event_at as entered_at,
        entry_basis,
        event_number as sequence_number
    from salesforce_sequenced
    where
        previous_stage is null
        or previous_stage <> stage
),

-- Bitrix ----------------------------------------------------------------------------

export_dates as (
    select distinct deal_snapshots.snapshot_date
    from deal_snapshots
),

exports as (
    select
        export_dates.snapshot_date,
        lag(export_dates.snapshot_date) over (order by export_dates.snapshot_date) as previous_export_date
    from export_dates
),

bitrix_keyed as (
    select
        deal_snapshots.deal_id as source_deal_id,
        deal_snapshots.snapshot_date,
        deal_snapshots.created_at,
        deal_snapshots.modified_at,
        deal_snapshots.stage_name,
        {{ normalize_key('deal_snapshots.stage_name') }} as stage_key
    from deal_snapshots
    where deal_snapshots.stage_name is not null
),

bitrix_mapped as (
    select
        bitrix_keyed.source_deal_id,
        bitrix_keyed.snapshot_date,
        bitrix_keyed.created_at,
        bitrix_keyed.modified_at,
        coalesce(stage_labels.stage, bitrix_keyed.stage_name) as stage
    from bitrix_keyed
    left join stage_labels
        on
            stage_labels.pipeline = 'bitrix'
            and bitrix_keyed.stage_key = stage_labels.label_key
),

bitrix_sequenced as (
    select
        bitrix_mapped.*,
        exports.previous_export_date,
        lag(bitrix_mapped.stage) over (
            partition by bitrix_mapped.source_deal_id
            order by bitrix_mapped.snapshot_date
        ) as previous_stage,
        lag(bitrix_mapped.snapshot_date) over (
            partition by bitrix_mapped.source_deal_id
            order by bitrix_mapped.snapshot_date
        ) as previous_snapshot_date,
        lag(bitrix_mapped.modified_at) over (
            partition by bitrix_mapped.source_deal_id
            order by bitrix_mapped.snapshot_date
        ) as previous_modified_at,
        row_number() over (
            partition by bitrix_mapped.source_deal_id
            order by bitrix_mapped.snapshot_date
        ) as snapshot_number
    from bitrix_mapped
    left join exports
        on bitrix_mapped.snapshot_date = exports.snapshot_date
),

bitrix_timed as (
    select
        bitrix_sequenced.*,
        {{ date_to_timestamp('snapshot_date') }} as snapshot_start,
        {{ dbt.dateadd('day', 1, date_to_timestamp('snapshot_date')) }} as snapshot_end,
        {{ date_to_timestamp('previous_snapshot_date') }} as previous_snapshot_start,
        coalesce(
            {{ date_to_timestamp('previous_export_date') }},
            {{ dbt.dateadd('day', -1, date_to_timestamp('snapshot_date')) }}
        ) as previous_export_start
    from bitrix_sequenced
),

bitrix_changes as (
    select
        'bitrix' as source_system,
        source_deal_id,
        stage,
        case
            when
                previous_stage is null
                and created_at < snapshot_end
                and created_at >= previous_export_start
                then created_at
            when
                previous_stage is null
                and modified_at >= created_at
                and modified_at < snapshot_end
                then modified_at
            when previous_stage is null
                then snapshot_start
            when
                modified_at >= previous_snapshot_start
                and modified_at < snapshot_end
                and (previous_modified_at is null or modified_at > previous_modified_at)
                then modified_at
            else snapshot_start
        end as entered_at,
        case
            when
                previous_stage is null
                and created_at < snapshot_end
                and created_at >= previous_export_start
                then 'created_at'
            when previous_stage is null
                then 'first_snapshot'
            when
                modified_at >= previous_snapshot_start
                and modified_at < snapshot_end
                and (previous_modified_at is null or modified_at > previous_modified_at)
                then 'modified_at'
            else 'snapshot_date'
        end as entry_basis,
        snapshot_number as sequence_number
    from bitrix_timed
    where
        previous_stage is null
        or previous_stage <> stage
),

-- Both ------------------------------------------------------------------------------

unioned as (
    select * from salesforce_changes
    union all
    select * from bitrix_changes
),

final as (
    select
        case unioned.source_system
            when 'salesforce' then 'sf:'
            else 'bx:'
        end || unioned.source_deal_id as deal_id,
        unioned.source_system,
        unioned.source_deal_id,
        unioned.source_system as pipeline,
        cast(row_number() over (
            partition by unioned.source_system, unioned.source_deal_id
            order by unioned.sequence_number
        ) as integer) as visit_number,
        unioned.stage,
        pipeline_stages.stage_order,
        pipeline_stages.probability as stage_probability,
        pipeline_stages.stage is not null as is_stage_configured,
        coalesce(pipeline_stages.is_closed, false) as is_closed_stage,
        coalesce(pipeline_stages.is_won, false) as is_won_stage,
        coalesce(pipeline_stages.is_lost, false) as is_lost_stage,
        unioned.entered_at,
        unioned.entry_basis
    from unioned
    left join pipeline_stages
        on
            unioned.source_system = pipeline_stages.pipeline
            and unioned.stage = pipeline_stages.stage
)

select * from final
