{{ config(severity = 'error') }}
-- A deal is in exactly one stage now: at most one open visit per deal.
select
    deal_id,
    count(*) as open_visits
from {{ ref('fct_stage_visit') }}
where is_open
group by deal_id
having count(*) > 1
