{#
    One row per deal of either CRM: Salesforce opportunities and, for Bitrix, the latest
    daily snapshot of each deal (so a deal keeps its last known state even when it stops
    being exported).

    - status: from the stage configuration (won / closed-not-won = lost / open); for a
      Salesforce stage missing from the configuration, from the opportunity's IsWon /
      IsClosed; a Bitrix stage missing from the configuration counts as open.
    - amount: last known amount (latest non-null), converted to the reporting currency
      with Salesforce CurrencyType rates (rate = units per corporate currency):
      amount / rate(deal currency) × rate(reporting currency); when CurrencyType lacks
      either currency (an org whose currencies do not include the reporting one), through
      the dated rates of table currency_rates on the deal's creation date:
      amount × rate_to_rub(deal currency) / rate_to_rub(reporting currency). No currency
      means the reporting currency; a currency with no rate either way leaves amount null
      (amount_original and currency keep the figures, amount_rate_source = `none`, and
      mart_data_quality counts the deal). No rounding: amounts keep source precision.
    - closed_at: entry into the closing stage (from int_deal_stage_changes); for
      Salesforce, CloseDate at 00:00 when history does not show the close.
    - manager_id: Salesforce OwnerId; Bitrix «Ответственный» through int_manager_name_map.
    - channel: lead source through int_channel_map, else (Salesforce) the campaign type;
      `unknown` when the deal has neither.
    - customer_id: PROVISIONAL. `inn:<INN>` when the INN is checksum-valid, else
      `sf:<account id>` / `bx:<normalised company name>`. fct_deal carries the customer
      of cross-system identity resolution instead (INN, phone, e-mail, name; dim_customer).
#}
with

opportunities as (
    select * from {{ ref('stg_salesforce__opportunity') }}
),

opportunity_history as (
    select * from {{ ref('stg_salesforce__opportunity_history') }}
),

accounts as (
    select * from {{ ref('stg_salesforce__account') }}
),

campaigns as (
    select * from {{ ref('stg_salesforce__campaign') }}
),

currency_types as (
    select * from {{ ref('stg_salesforce__currency_type') }}
),

dated_rates as (
    select * from {{ ref('int_currency_rates') }}
),

deal_snapshots as (
    select * from {{ ref('stg_bitrix__deal_snapshot') }}
),

stage_changes as (
    select * from {{ ref('int_deal_stage_changes') }}
),

pipeline_stages as (
    select * from {{ ref('int_pipeline_stages') }}
),

-- every label a stage is known by (its name, and its code where configured)
stage_labels as (
    {{ stage_labels('pipeline_stages') }}
),

manager_names as (
    select * from {{ ref('int_manager_name_map') }}
),

channels as (
    select * from {{ ref('int_channel_map') }}
),

loss_reasons as (
    select * from {{ ref('int_loss_reasons') }}
),

-- Salesforce ------------------------------------------------------------------------

history_amounts as (
    select
        opportunity_id,
        amount
    from (
        select
            opportunity_history.opportunity_id,
            opportunity_history.amount,
            row_number() over (
                partition by opportunity_history.opportunity_id
                order by opportunity_history.created_at desc, opportunity_history.history_id desc
            ) as amount_rank
        from opportunity_history
        where opportunity_history.amount is not null
    ) as ranked_amounts
    where amount_rank = 1
),

salesforce_deals as (
    select
        'salesforce' as source_system,
        opportunities.opportunity_id as source_deal_id,
        opportunities.opportunity_name as deal_name,
        opportunities.stage_name as stage_raw,
        coalesce(opportunities.amount, history_amounts.amount) as amount_original,
        opportunities.currency_iso_code as currency,
        opportunities.created_at,
        opportunities.close_date as expected_close_date,
        opportunities.is_closed as source_is_closed,
        opportunities.is_won as source_is_won,
        opportunities.owner_id as manager_id,
        cast(null as {{ dbt.type_string() }}) as responsible_name,
        'salesforce_owner' as manager_match_rule,
        opportunities.lead_source,
        campaigns.campaign_type,
        opportunities.loss_reason as loss_reason_raw,
        opportunities.account_id,
        accounts.account_name as company_name,
        accounts.inn,
        accounts.inn_is_valid,
        case
            when accounts.inn_is_valid then 'inn:' || accounts.inn
            when opportunities.account_id is not null then 'sf:' || opportunities.account_id
        end as customer_id,
        opportunities.last_modified_at as last_seen_at,
        opportunities._load_id as load_id
    from opportunities
    left join history_amounts
        on opportunities.opportunity_id = history_amounts.opportunity_id
    left join accounts
        on opportunities.account_id = accounts.account_id
    left join campaigns
        on opportunities.campaign_id = campaigns.campaign_id
),

-- Bitrix ----------------------------------------------------------------------------

bitrix_ranked as (
    {{ with_recency_rank('deal_snapshots', 'deal_id', 'snapshot_date') }}
),

bitrix_amounts as (
    select
        deal_id,
        amount,
        currency_iso_code
    from (
        select
            deal_snapshots.deal_id,
            deal_snapshots.amount,
            deal_snapshots.currency_iso_code,
            row_number() over (
                partition by deal_snapshots.deal_id
                order by deal_snapshots.snapshot_date desc
            ) as amount_rank
        from deal_snapshots
        where deal_snapshots.amount is not null
    ) as ranked_amounts
    where amount_rank = 1
),

bitrix_deals as (
    select
        'bitrix' as source_system,
        bitrix_ranked.deal_id as source_deal_id,
        bitrix_ranked.deal_title as deal_name,
        bitrix_ranked.stage_name as stage_raw,
        bitrix_amounts.amount as amount_original,
        coalesce(bitrix_amounts.currency_iso_code, bitrix_ranked.currency_iso_code) as currency,
        bitrix_ranked.created_at,
        cast(null as date) as expected_close_date,
        cast(null as boolean) as source_is_closed,
        cast(null as boolean) as source_is_won,
        manager_names.manager_id,
        bitrix_ranked.responsible_name,
        manager_names.match_rule as manager_match_rule,
        bitrix_ranked.lead_source,
        cast(null as {{ dbt.type_string() }}) as campaign_type,
        bitrix_ranked.loss_reason as loss_reason_raw,
        cast(null as {{ dbt.type_string() }}) as account_id,
        bitrix_ranked.company_name,
        bitrix_ranked.inn,
        bitrix_ranked.inn_is_valid,
        case
            when bitrix_ranked.inn_is_valid then 'inn:' || bitrix_ranked.inn
            when bitrix_ranked.company_name_key is not null then 'bx:' || bitrix_ranked.company_name_key
        end as customer_id,
        {{ date_to_timestamp('bitrix_ranked.snapshot_date') }} as last_seen_at,
        bitrix_ranked._load_id as load_id
    from bitrix_ranked
    left join bitrix_amounts
        on bitrix_ranked.deal_id = bitrix_amounts.deal_id
    left join manager_names
        on bitrix_ranked.responsible_key = manager_names.name_key
    where bitrix_ranked.recency_rank = 1
),

-- Both ------------------------------------------------------------------------------

unioned as (
    select * from salesforce_deals
    union all
    select * from bitrix_deals
),

keyed as (
    select
        unioned.*,
        {{ normalize_key('unioned.stage_raw') }} as stage_key,
        {{ normalize_key('unioned.lead_source') }} as lead_source_key,
        {{ normalize_key('unioned.campaign_type') }} as campaign_type_key,
        {{ normalize_key('unioned.loss_reason_raw') }} as loss_reason_key
    from unioned
),

last_visit_numbers as (
    select
        deal_id,
        max(visit_number) as last_visit_number
    from stage_changes
    group by deal_id
),

last_visits as (
    select
        stage_changes.deal_id,
        stage_changes.stage,
        stage_changes.stage_order,
        stage_changes.stage_probability,
        stage_changes.is_stage_configured,
        stage_changes.is_closed_stage,
        stage_changes.is_won_stage,
        stage_changes.entered_at
    from stage_changes
    inner join last_visit_numbers as last_numbers
        on
            stage_changes.deal_id = last_numbers.deal_id
            and stage_changes.visit_number = last_numbers.last_visit_number
),

stages_before_loss as (
    select
        deal_id,
        stage as last_stage_before_loss
    from (
        select
            stage_changes.deal_id,
            stage_changes.stage,
            row_number() over (
                partition by stage_changes.deal_id
                order by stage_changes.visit_number desc
            ) as recency_rank
        from stage_changes
        where not stage_changes.is_closed_stage
    ) as open_visits
    where recency_rank = 1
),

reporting_rate as (
    select max(currency_types.conversion_rate) as conversion_rate
    from currency_types
    where currency_types.iso_code = '{{ var("reporting_currency") }}'
),

enriched as (
    select
        case keyed.source_system
            when 'salesforce' then 'sf:'
            else 'bx:'
        end || keyed.source_deal_id as deal_id,
        keyed.*,
        coalesce(pipeline_stages.stage, keyed.stage_raw) as stage,
        pipeline_stages.stage_order,
        pipeline_stages.probability as stage_probability,
        pipeline_stages.stage is not null as is_stage_configured,
        case
            when pipeline_stages.stage is not null
                then
                    case
                        when pipeline_stages.is_won then 'won'
                        when pipeline_stages.is_closed then 'lost'
                        else 'open'
                    end
            when keyed.source_is_won then 'won'
            when keyed.source_is_closed then 'lost'
            else 'open'
        end as status,
        case
            when keyed.currency is null or keyed.currency = '{{ var("reporting_currency") }}'
                then keyed.amount_original
            when deal_rate.conversion_rate > 0 and reporting_rate.conversion_rate > 0
                then keyed.amount_original / deal_rate.conversion_rate * reporting_rate.conversion_rate
            when deal_dated_rate.rate_to_rub > 0 and reporting_dated_rate.rate_to_rub > 0
                then keyed.amount_original * deal_dated_rate.rate_to_rub / reporting_dated_rate.rate_to_rub
        end as amount,
        case
            when keyed.currency is null or keyed.currency = '{{ var("reporting_currency") }}'
                then 'reporting_currency'
            when deal_rate.conversion_rate > 0 and reporting_rate.conversion_rate > 0
                then 'crm_rate'
            when deal_dated_rate.rate_to_rub > 0 and reporting_dated_rate.rate_to_rub > 0
                then 'dated_rate'
            else 'none'
        end as amount_rate_source,
        lead_channels.channel as lead_source_channel,
        campaign_channels.channel as campaign_channel,
        loss_reasons.loss_reason as loss_reason_normalised
    from keyed
    left join stage_labels
        on
            keyed.source_system = stage_labels.pipeline
            and keyed.stage_key = stage_labels.label_key
    left join pipeline_stages
        on
            stage_labels.pipeline = pipeline_stages.pipeline
            and stage_labels.stage = pipeline_stages.stage
    left join currency_types as deal_rate
        on keyed.currency = deal_rate.iso_code
    cross join reporting_rate
    left join dated_rates as deal_dated_rate
        on {{ rate_on(
            'deal_dated_rate', 'cast(keyed.created_at as date)', currency=normalize_currency('keyed.currency')
        ) }}
    left join dated_rates as reporting_dated_rate
        on {{ rate_on('reporting_dated_rate', 'cast(keyed.created_at as date)') }}
    left join channels as lead_channels
        on
            lead_channels.source_type = 'lead_source'
            and keyed.lead_source_key = lead_channels.raw_key
    left join channels as campaign_channels
        on
            campaign_channels.source_type = 'campaign_type'
            and keyed.campaign_type_key = campaign_channels.raw_key
    left join loss_reasons
        on keyed.loss_reason_key = loss_reasons.loss_reason_key
),

final as (
    select
        enriched.deal_id,
        enriched.source_system,
        enriched.source_deal_id,
        enriched.source_system as pipeline,
        enriched.deal_name,
        enriched.customer_id,
        enriched.account_id,
        enriched.company_name,
        enriched.inn,
        enriched.inn_is_valid,
        enriched.manager_id,
        enriched.responsible_name,
        enriched.manager_match_rule,
        coalesce(
            enriched.lead_source_channel,
            enriched.campaign_channel,
            case when enriched.lead_source is not null or enriched.campaign_type is not null then 'other' end,
            'unknown'
        ) as channel,
        enriched.lead_source,
        enriched.stage,
        enriched.stage_order,
        enriched.stage_probability,
        enriched.is_stage_configured,
        enriched.status,
        enriched.created_at,
        case
            when enriched.status = 'open' then null
            when last_visits.is_closed_stage and last_visits.stage = enriched.stage then last_visits.entered_at
            when enriched.expected_close_date is not null then {{ date_to_timestamp('enriched.expected_close_date') }}
            else last_visits.entered_at
        end as closed_at,
        enriched.expected_close_date,
        enriched.amount,
        enriched.amount_original,
        coalesce(enriched.currency, '{{ var("reporting_currency") }}') as currency,
        enriched.amount_rate_source,
        enriched.load_id,
        case
            when enriched.status = 'lost' then coalesce(enriched.loss_reason_normalised, 'other')
        end as loss_reason,
        enriched.loss_reason_raw,
        case
            when enriched.status = 'lost' then stages_before_loss.last_stage_before_loss
        end as last_stage_before_loss,
        enriched.last_seen_at
    from enriched
    left join last_visits
        on enriched.deal_id = last_visits.deal_id
    left join stages_before_loss
        on enriched.deal_id = stages_before_loss.deal_id
)

select * from final
