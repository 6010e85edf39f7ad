{#
    Attribution of every won deal to channels, one row per won deal × attribution model ×
    credited touch. Models (labels of mart_channel_roi), side by side, never mixed; the
    credits of one deal sum to 1 in each model:
    - `first_touch`: 100 % to the earliest touch;
    - `last_touch`: 100 % to the latest touch;
    - `linear`: equal shares 1/n over all n touches.

    The touches of a won deal D (int_attribution_touches, attributable ones only: a
    channel other than `unknown`): D's own touch (the deal, or the lead it was converted
    from), and the touches of D's customer at or before D's creation that are
    - not older than var attribution_lookback_days (365) before D's creation, and
    - later than the close of the customer's previous won deal (the latest won deal closed
      before D was created): a touch earns credit for one conversion only.
    Ties in time are broken by touch_id. A won deal with no attributable touch is credited
    100 % to channel `unknown` in every model (touch_id null), so that each model
    distributes all won deals and all revenue.

    Amounts per deal: revenue_net = fct_deal.amount / (1 + var vat_rate) to the cent (deal amounts
    include VAT, as the invoices made from them do); is_first_won_deal marks the
    customer's first won deal (the one that made it a customer: new customers / CAC).
    The month of the conversion is the local month of the deal's closed_at.
#}
with

deals as (
    select * from {{ ref('fct_deal') }}
),

touches as (
    select * from {{ ref('int_attribution_touches') }}
),

customer_keys as (
    select * from {{ ref('int_customer_keys') }}
),

won_deals as (
    select
        deals.deal_id,
        customer_keys.customer_id,
        deals.created_at,
        deals.closed_at,
        deals.amount,
        {{ net_of_vat('deals.amount') }} as revenue_net
    from deals
    left join customer_keys
        on
            customer_keys.source_system = 'deal'
            and deals.deal_id = customer_keys.source_key
    where
        deals.status = 'won'
        and deals.closed_at is not null
),

ranked_won_deals as (
    select
        won_deals.*,
        row_number() over (
            partition by coalesce(won_deals.customer_id, won_deals.deal_id)
            order by won_deals.closed_at, won_deals.deal_id
        ) = 1 as is_first_won_deal
    from won_deals
),

previous_wins as (
    select
        won_deals.deal_id,
        max(earlier.closed_at) as previous_won_at
    from won_deals
    inner join won_deals as earlier
        on
            won_deals.customer_id = earlier.customer_id
            and won_deals.created_at > earlier.closed_at
            and won_deals.deal_id <> earlier.deal_id
    group by won_deals.deal_id
),

attributable as (
    select *
    from touches
    where is_attributable
),

deal_touches as (
    -- the deal's own touch (the deal, or the lead converted into it)
    select
        won_deals.deal_id,
        attributable.touch_id,
        attributable.touch_at,
        attributable.channel
    from won_deals
    inner join attributable
        on won_deals.deal_id = attributable.deal_id

    union

    -- the customer's earlier touches inside the window
    select
        won_deals.deal_id,
        attributable.touch_id,
        attributable.touch_at,
        attributable.channel
    from won_deals
    inner join attributable
        on
            won_deals.customer_id = attributable.customer_id
            and won_deals.created_at >= attributable.touch_at
            and attributable.touch_at
            >= {{ dbt.dateadd('day', -1 * var('attribution_lookback_days'), 'won_deals.created_at') }}
    left join previous_wins
        on won_deals.deal_id = previous_wins.deal_id
    where
        previous_wins.previous_won_at is null
        or attributable.touch_at > previous_wins.previous_won_at
),

sequenced as (
    select
        deal_touches.*,
        row_number() over (
            partition by deal_touches.deal_id
            order by deal_touches.touch_at, deal_touches.touch_id
        ) as touch_number,
        count(*) over (partition by deal_touches.deal_id) as touch_count
    from deal_touches
),

{#- per attribution model: the credit of a touch and the touches credited (none = all) -#}
{%- set model_credits = {
    'first_touch': {'credit': '1.0', 'touches': 'touch_number = 1'},
    'last_touch': {'credit': '1.0', 'touches': 'touch_number = touch_count'},
    'linear': {'credit': '1.0 / touch_count', 'touches': none},
} %}

credited as (
    {%- for attribution_model in attribution_models() %}
        {%- set rule = model_credits[attribution_model] %}
        select
            deal_id,
            '{{ attribution_model }}' as attribution_model,
            touch_id,
            touch_at,
            channel,
            touch_count,
            {{ rule.credit }} as credit
        from sequenced
        {%- if rule.touches is not none %}
            where {{ rule.touches }}
        {%- endif %}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

models as (
    {{ attribution_model_rows() }}
),

untouched as (
    select
        ranked_won_deals.deal_id,
        models.attribution_model,
        cast(null as {{ dbt.type_string() }}) as touch_id,
        cast(null as timestamp) as touch_at,
        'unknown' as channel,
        0 as touch_count,
        1.0 as credit
    from ranked_won_deals
    cross join models
    left join sequenced
        on ranked_won_deals.deal_id = sequenced.deal_id
    where sequenced.deal_id is null
),

all_credits as (
    select * from credited
    union all
    select * from untouched
),

final as (
    select
        all_credits.deal_id,
        ranked_won_deals.customer_id,
        all_credits.attribution_model,
        all_credits.touch_id,
        all_credits.touch_at,
        all_credits.channel,
        cast(all_credits.touch_count as integer) as touch_count,
        cast(all_credits.credit as double) as credit,
        ranked_won_deals.created_at as deal_created_at,
        ranked_won_deals.closed_at as won_at,
        {{ month_start('ranked_won_deals.closed_at') }} as won_month,
        ranked_won_deals.amount,
        ranked_won_deals.revenue_net,
        ranked_won_deals.is_first_won_deal
    from all_credits
    inner join ranked_won_deals
        on all_credits.deal_id = ranked_won_deals.deal_id
)

select * from final
