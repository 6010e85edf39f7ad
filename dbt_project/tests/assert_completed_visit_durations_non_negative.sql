-- Stage entries of a deal are ordered in time: no completed visit has a negative duration.
select
    stage_visit_id,
    days_in_stage
from {{ ref('fct_stage_visit') }}
where exited_at is not null
    and days_in_stage < 0
