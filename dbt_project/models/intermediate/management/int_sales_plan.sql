{#
    The plan file (seed sales_plan) resolved to employees and teams, one row per plan row.

    - quarter `YYYY-Qn` -> quarter_start (first day of the quarter); a malformed quarter
      gives null and an unmatched row (the seed's tests name it).
    - level `manager`: manager_or_team is a manager_id (an 18-character Salesforce Id is cut
      to its 15-character form) or a full name (normalize_key: lower case, ё = е, spaces
      collapsed) -> dim_manager.manager_id. A name shared by two employees matches none.
    - level `team`: manager_or_team is a team name (dim_manager.team, normalised the same
      way) or the manager_id of a team lead (dim_manager.team_lead_id) -> team.
    - is_matched = false when nothing matched: the row is kept (and reported by a warn-level
      test), it never reaches the mart.
#}
with

plan as (
    select * from {{ ref('sales_plan') }}
),

managers as (
    select * from {{ ref('dim_manager') }}
),

parsed as (
    select
        plan.quarter as quarter_label,
        case
            when
                trim(plan.quarter) like '____-Q_'
                and {{ digits_only('substr(trim(plan.quarter), 1, 4)') }} = substr(trim(plan.quarter), 1, 4)
                and substr(trim(plan.quarter), 7, 1) in ('1', '2', '3', '4')
                then {{ try_cast(
                    "substr(trim(plan.quarter), 1, 4) || '-' || lpad(cast(("
                    ~ try_cast('substr(trim(plan.quarter), 7, 1)', 'integer')
                    ~ " - 1) * 3 + 1 as " ~ dbt.type_string() ~ "), 2, '0') || '-01'",
                    'date') }}
        end as quarter_start,
        lower(trim(plan.level)) as plan_level,
        trim(plan.manager_or_team) as manager_or_team,
        {{ sf_id15('plan.manager_or_team') }} as key_id15,
        {{ normalize_key('plan.manager_or_team') }} as key_name,
        plan.plan_amount
    from plan
),

manager_by_id as (
    select
        parsed.quarter_label,
        parsed.plan_level,
        parsed.manager_or_team,
        managers.manager_id,
        'manager_id' as match_rule
    from parsed
    inner join managers
        on parsed.key_id15 = managers.manager_id
    where parsed.plan_level = 'manager'
),

manager_by_name as (
    select
        parsed.quarter_label,
        parsed.plan_level,
        parsed.manager_or_team,
        min(managers.manager_id) as manager_id,
        'name' as match_rule
    from parsed
    inner join managers
        on {{ normalize_key('managers.name') }} = parsed.key_name
    where parsed.plan_level = 'manager'
    group by
        parsed.quarter_label,
        parsed.plan_level,
        parsed.manager_or_team
    having count(distinct managers.manager_id) = 1
),

team_by_name as (
    select distinct
        parsed.quarter_label,
        parsed.plan_level,
        parsed.manager_or_team,
        managers.team,
        'team_name' as match_rule
    from parsed
    inner join managers
        on {{ normalize_key('managers.team') }} = parsed.key_name
    where parsed.plan_level = 'team'
),

team_by_lead as (
    select
        parsed.quarter_label,
        parsed.plan_level,
        parsed.manager_or_team,
        min(managers.team) as team,
        'team_lead_id' as match_rule
    from parsed
    inner join managers
        on parsed.key_id15 = managers.team_lead_id
    where parsed.plan_level = 'team'
    group by
        parsed.quarter_label,
        parsed.plan_level,
        parsed.manager_or_team
),

final as (
    select
        parsed.quarter_label,
        parsed.quarter_start,
        parsed.plan_level,
        parsed.manager_or_team,
        cast(parsed.plan_amount as decimal(18, 2)) as plan_amount,
        case
            when parsed.plan_level = 'manager' then coalesce(manager_by_id.manager_id, manager_by_name.manager_id)
        end as manager_id,
        case
            when parsed.plan_level = 'team' then coalesce(team_by_name.team, team_by_lead.team)
        end as team,
        coalesce(
            manager_by_id.match_rule,
            manager_by_name.match_rule,
            team_by_name.match_rule,
            team_by_lead.match_rule,
            'unmatched'
        ) as match_rule,
        parsed.quarter_start is not null
        and coalesce(
            manager_by_id.manager_id,
            manager_by_name.manager_id,
            team_by_name.team,
            team_by_lead.team
        ) is not null as is_matched
    from parsed
    left join manager_by_id
        on
            parsed.quarter_label = manager_by_id.quarter_label
            and parsed.plan_level = manager_by_id.plan_level
            and parsed.manager_or_team = manager_by_id.manager_or_team
    left join manager_by_name
        on
            parsed.quarter_label = manager_by_name.quarter_label
            and parsed.plan_level = manager_by_name.plan_level
            and parsed.manager_or_team = manager_by_name.manager_or_team
    left join team_by_name
        on
            parsed.quarter_label = team_by_name.quarter_label
            and parsed.plan_level = team_by_name.plan_level
            and parsed.manager_or_team = team_by_name.manager_or_team
    left join team_by_lead
        on
            parsed.quarter_label = team_by_lead.quarter_label
            and parsed.plan_level = team_by_lead.plan_level
            and parsed.manager_or_team = team_by_lead.manager_or_team
)

select * from final
