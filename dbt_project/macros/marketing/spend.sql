{#
    Select (for a CTE) of the marketing spend per month and channel: the rows of `spend`
    (int_marketing_spend) summed by month and channel.
#}
{% macro monthly_channel_spend(spend) -%}
    select
        {{ spend }}.month,
        {{ spend }}.channel,
        sum({{ spend }}.spend) as spend
    from {{ spend }}
    group by
        {{ spend }}.month,
        {{ spend }}.channel
{%- endmacro %}
