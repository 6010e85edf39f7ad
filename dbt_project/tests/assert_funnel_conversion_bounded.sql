-- Converted deals are a subset of entered deals.
select
    month,
    pipeline,
    stage,
    deals_entered,
    deals_converted
from {{ ref('mart_funnel_velocity') }}
where deals_converted > deals_entered
    or conversion_rate < 0
    or conversion_rate > 1
