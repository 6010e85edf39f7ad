{#
    Marketing spend per month × channel, from the 1C expense register
    (stg_onec__expense). An expense line is marketing when the register names its
    marketing channel (`Канал`); lines without a channel (rent, payroll, telecoms, …)
    are not marketing and are left out. The raw channel is normalised with the project's
    channel mapping (seed channel_mapping, the same patterns int_channel_map applies to
    CRM lead sources: lower case, ё = е, LIKE pattern, lowest priority wins; lead-source
    patterns first, then campaign-type and UTM patterns); a value no pattern matches is
    channel `other`. Month = calendar month of the expense date. Amounts are roubles, as
    1C keeps them (converted when the reporting currency is another, at the rate of the
    expense date). Negative lines (refunds) reduce the spend.
#}
with

expenses as (
    select * from {{ ref('stg_onec__expense') }}
),

mapping as (
    select * from {{ ref('channel_mapping') }}
),

currency_rates as (
    select * from {{ ref('int_currency_rates') }}
),

marketing_lines as (
    select
        expenses.*,
        {{ normalize_key('expenses.channel_raw') }} as channel_key
    from expenses
    where expenses.channel_raw is not null
),

channel_keys as (
    select distinct channel_key
    from marketing_lines
),

matched_channels as (
    select
        channel_keys.channel_key,
        mapping.channel,
        row_number() over (
            partition by channel_keys.channel_key
            order by
                case mapping.source_type
                    when 'lead_source' then 1
                    when 'campaign_type' then 2
                    when 'utm_source' then 3
                    else 4
                end,
                mapping.priority,
                mapping.pattern
        ) as match_rank
    from channel_keys
    inner join mapping
        on channel_keys.channel_key like lower(mapping.pattern)
),

mapped_lines as (
    select
        marketing_lines.*,
        coalesce(matched_channels.channel, 'other') as channel,
        {{ month_start('marketing_lines.spent_on') }} as month,
        marketing_lines.amount / reporting_rates.rate_to_rub as amount_reporting
    from marketing_lines
    left join matched_channels
        on
            marketing_lines.channel_key = matched_channels.channel_key
            and matched_channels.match_rank = 1
    left join currency_rates as reporting_rates
        on {{ rate_on('reporting_rates', 'marketing_lines.spent_on') }}
),

spend as (
    select
        month,
        channel,
        cast(round(sum(amount_reporting), 2) as decimal(18, 2)) as spend,
        count(*) as expense_lines
    from mapped_lines
    group by
        month,
        channel
),

raw_values as (
    select
        month,
        channel,
        {{ dbt.listagg('channel_raw', "', '", 'order by channel_raw') }} as channel_raw_values
    from (
        select distinct
            month,
            channel,
            channel_raw
        from mapped_lines
    ) as distinct_values
    group by
        month,
        channel
),

final as (
    select
        spend.month,
        spend.channel,
        spend.spend,
        spend.expense_lines,
        raw_values.channel_raw_values
    from spend
    left join raw_values
        on
            spend.month = raw_values.month
            and spend.channel = raw_values.channel
)

select * from final
