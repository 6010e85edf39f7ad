{#
    One row per employee: every Salesforce user, plus the people the other sources name
    without a matching user (int_manager_keys: `name:<normalised name>` for a Bitrix / 1C
    «Ответственный» or a named extension, `ext:<extension>` for a bare extension).

    - team: seed `teams` when it names the employee (by manager_id, then by name, then by
      Salesforce UserRoleId); else from the Salesforce hierarchy (User.ManagerId): a user
      with direct reports leads a team named after them, a user without reports belongs
      to the team of their manager; else `unassigned`. team_lead_id is the lead's user
      Id when the team comes from the hierarchy.
    - is_active: Salesforce User.IsActive; for people known by name only, whether they
      appear on a Bitrix deal or lead export or a 1C invoice dated within 90 days of the
      latest such date; unknown (null) for a bare extension.
    - extensions: the employee's PBX extensions (Asterisk extensions.csv and numeric
      cloud PBX employee values), comma-separated, sorted.
#}
with

users as (
    select * from {{ ref('stg_salesforce__user') }}
),

manager_keys as (
    select * from {{ ref('int_manager_keys') }}
),

name_map as (
    select * from {{ ref('int_manager_name_map') }}
),

extensions as (
    select * from {{ ref('stg_asterisk__extension') }}
),

teams as (
    select * from {{ ref('teams') }}
),

deal_snapshots as (
    select * from {{ ref('stg_bitrix__deal_snapshot') }}
),

bx_leads as (
    select * from {{ ref('stg_bitrix__lead') }}
),

invoices as (
    select * from {{ ref('stg_onec__invoice') }}
),

-- Employees -----------------------------------------------------------------------------

crm_users as (
    select
        users.user_id as manager_id,
        users.user_name as name,
        users.user_name_key as name_key,
        users.email,
        users.is_active,
        users.user_role_id,
        users.manager_user_id as reports_to_id,
        'salesforce_user' as source_system
    from users
    where users.user_id is not null
),

named_people as (
    select
        manager_keys.manager_id,
        min(coalesce(name_map.name, extensions.employee_name)) as name,
        min(substr(manager_keys.manager_id, 6)) as name_key
    from manager_keys
    left join name_map
        on manager_keys.manager_id = name_map.manager_id
    left join extensions
        on 'name:' || extensions.employee_name_key = manager_keys.manager_id
    where manager_keys.manager_id like 'name:%'
    group by manager_keys.manager_id
),

bare_extensions as (
    select distinct manager_keys.manager_id
    from manager_keys
    where manager_keys.manager_id like 'ext:%'
),

seen_names as (
    select
        deal_snapshots.responsible_key as name_key,
        deal_snapshots.snapshot_date as seen_on
    from deal_snapshots
    union all
    select
        bx_leads.responsible_key as name_key,
        bx_leads.export_date as seen_on
    from bx_leads
    union all
    select
        invoices.responsible_key as name_key,
        invoices.issued_on as seen_on
    from invoices
),

last_seen as (
    select
        seen_names.name_key,
        max(seen_names.seen_on) as last_seen_on
    from seen_names
    where seen_names.name_key is not null
    group by seen_names.name_key
),

latest_export as (
    select max(seen_names.seen_on) as latest_on
    from seen_names
),

employees as (
    select
        crm_users.manager_id,
        crm_users.name,
        crm_users.name_key,
        crm_users.email,
        crm_users.is_active,
        crm_users.user_role_id,
        crm_users.reports_to_id,
        crm_users.source_system
    from crm_users

    union all

    select
        named_people.manager_id,
        coalesce(named_people.name, named_people.name_key) as name,
        named_people.name_key,
        cast(null as {{ dbt.type_string() }}) as email,
        case
            when last_seen.last_seen_on is null then false
            else last_seen.last_seen_on >= {{ dbt.dateadd('day', -90, 'latest_export.latest_on') }}
        end as is_active,
        cast(null as {{ dbt.type_string() }}) as user_role_id,
        cast(null as {{ dbt.type_string() }}) as reports_to_id,
        'name_only' as source_system
    from named_people
    left join last_seen
        on named_people.name_key = last_seen.name_key
    cross join latest_export

    union all

    select
        bare_extensions.manager_id,
        'Extension ' || substr(bare_extensions.manager_id, 5) as name,
        cast(null as {{ dbt.type_string() }}) as name_key,
        cast(null as {{ dbt.type_string() }}) as email,
        cast(null as boolean) as is_active,
        cast(null as {{ dbt.type_string() }}) as user_role_id,
        cast(null as {{ dbt.type_string() }}) as reports_to_id,
        'extension_only' as source_system
    from bare_extensions
),

-- Teams ---------------------------------------------------------------------------------

seeded_teams as (
    select
        employees.manager_id,
        teams.team,
        row_number() over (
            partition by employees.manager_id
            order by
                case teams.match_type when 'manager_id' then 1 when 'name' then 2 else 3 end,
                teams.team
        ) as team_rank
    from employees
    inner join teams
        on
            (teams.match_type = 'manager_id' and employees.manager_id = teams.match_value)
            or (teams.match_type = 'name' and {{ normalize_key('teams.match_value') }} = employees.name_key)
            or (teams.match_type = 'role_id' and {{ sf_id15('teams.match_value') }} = employees.user_role_id)
),

report_counts as (
    select
        crm_users.reports_to_id as manager_id,
        count(*) as direct_reports
    from crm_users
    where crm_users.reports_to_id is not null
    group by crm_users.reports_to_id
),

hierarchy_teams as (
    select
        crm_users.manager_id,
        case
            when report_counts.direct_reports > 0 then crm_users.manager_id
            when bosses.manager_id is not null then bosses.manager_id
        end as team_lead_id
    from crm_users
    left join report_counts
        on crm_users.manager_id = report_counts.manager_id
    left join crm_users as bosses
        on crm_users.reports_to_id = bosses.manager_id
),

extension_lists as (
    select
        manager_id,
        {{ dbt.listagg('extension', "','", 'order by extension') }} as extensions
    from (
        select distinct
            manager_keys.manager_id,
            manager_keys.source_key as extension
        from manager_keys
        where
            manager_keys.source_system = 'asterisk_extension'
            or (
                manager_keys.source_system = 'cloud_pbx_employee'
                and {{ digits_only('manager_keys.source_key') }} = manager_keys.source_key
            )
    ) as distinct_extensions
    group by manager_id
),

final as (
    select
        employees.manager_id,
        employees.name,
        coalesce(seeded_teams.team, team_leads.name, 'unassigned') as team,
        case
            when seeded_teams.team is not null then 'seed'
            when team_leads.name is not null then 'hierarchy'
            else 'none'
        end as team_source,
        case when seeded_teams.team is null then hierarchy_teams.team_lead_id end as team_lead_id,
        employees.is_active,
        extension_lists.extensions,
        employees.email,
        employees.reports_to_id,
        employees.user_role_id,
        employees.source_system
    from employees
    left join seeded_teams
        on
            employees.manager_id = seeded_teams.manager_id
            and seeded_teams.team_rank = 1
    left join hierarchy_teams
        on employees.manager_id = hierarchy_teams.manager_id
    left join employees as team_leads
        on hierarchy_teams.team_lead_id = team_leads.manager_id
    left join extension_lists
        on employees.manager_id = extension_lists.manager_id
)

select * from final
