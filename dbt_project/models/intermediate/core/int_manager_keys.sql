{#
    Every way an employee is named in the sources -> manager_id, one row per
    (source_system, source_key), with the rule used:

    | source_system      | source_key                              | rule                                 |
    |--------------------|-----------------------------------------|--------------------------------------|
    | salesforce_user    | 15-character User Id                    | own_record                           |
    | asterisk_extension | extension (extensions.csv)              | extension_map: its CRM user_id;      |
    |                    |                                         | else its name matched to one user    |
    | cloud_pbx_employee | the employee / extension value of calls | extension_map when it is an Asterisk |
    |                    |                                         | extension (one numbering plan), else |
    |                    |                                         | its name matched to one user         |
    | responsible_name   | normalize_key of a Bitrix / 1C          | int_manager_name_map (exact name or  |
    |                    | «Ответственный»                         | first two words, one user only)      |

    manager_id is the Salesforce user Id (15 characters) when the employee is a CRM user,
    `name:<normalised name>` for a person known by name only (a responsible person or an
    extension's name matching no user, as int_manager_name_map and int_deals have it),
    and `ext:<extension>` for a bare extension number that matches nobody (match_rule
    `unmatched`).
    Names match users by the whole normalised name (lower case, ё = е, spaces
    collapsed), then by the first two words in either order; only a single candidate user
    counts.
#}
with

users as (
    select * from {{ ref('stg_salesforce__user') }}
),

extensions as (
    select * from {{ ref('stg_asterisk__extension') }}
),

cloud_calls as (
    select * from {{ ref('stg_cloud_pbx__call') }}
),

name_map as (
    select * from {{ ref('int_manager_name_map') }}
),

user_names as (
    select
        users.user_id,
        users.user_name_key,
        {{ _name_token_pair('users.user_name_key') }} as token_pair
    from users
    where users.user_name_key is not null
),

-- Names of extensions and cloud PBX employees -> users -----------------------------

pbx_names as (
    select distinct extensions.employee_name_key as name_key
    from extensions
    where extensions.employee_name_key is not null
    union
    select distinct {{ normalize_key('cloud_calls.employee_extension') }} as name_key
    from cloud_calls
    where cloud_calls.employee_extension is not null
),

name_candidates as (
    {{ user_name_candidates('pbx_names', 'user_names') }}
),

name_matches as (
    select
        name_key,
        user_id,
        match_rule
    from (
        select
            name_candidates.*,
            row_number() over (
                partition by name_candidates.name_key
                order by name_candidates.rule_priority
            ) as match_rank
        from name_candidates
        where name_candidates.candidates = 1
    ) as ranked
    where match_rank = 1
),

-- Keys --------------------------------------------------------------------------------

user_keys as (
    select
        'salesforce_user' as source_system,
        users.user_id as source_key,
        users.user_id as manager_id,
        'own_record' as match_rule
    from users
    where users.user_id is not null
),

extension_keys as (
    select
        'asterisk_extension' as source_system,
        extensions.extension as source_key,
        case
            when users.user_id is not null then users.user_id
            when name_matches.user_id is not null then name_matches.user_id
            when extensions.employee_name_key is not null then 'name:' || extensions.employee_name_key
            else 'ext:' || extensions.extension
        end as manager_id,
        case
            when users.user_id is not null then 'extension_map'
            when name_matches.user_id is not null then name_matches.match_rule
            else 'unmatched'
        end as match_rule
    from extensions
    left join users
        on extensions.user_id = users.user_id
    left join name_matches
        on extensions.employee_name_key = name_matches.name_key
    where extensions.extension is not null
),

cloud_employees as (
    select distinct cloud_calls.employee_extension as employee
    from cloud_calls
    where cloud_calls.employee_extension is not null
),

cloud_keys as (
    select
        'cloud_pbx_employee' as source_system,
        cloud_employees.employee as source_key,
        case
            when extension_keys.manager_id is not null then extension_keys.manager_id
            when name_matches.user_id is not null then name_matches.user_id
            when {{ digits_only('cloud_employees.employee') }} = cloud_employees.employee
                then 'ext:' || cloud_employees.employee
            else 'name:' || {{ normalize_key('cloud_employees.employee') }}
        end as manager_id,
        case
            when extension_keys.match_rule = 'unmatched' then 'unmatched'
            when extension_keys.manager_id is not null then 'extension_map'
            when name_matches.user_id is not null then name_matches.match_rule
            else 'unmatched'
        end as match_rule
    from cloud_employees
    left join extension_keys
        on cloud_employees.employee = extension_keys.source_key
    left join name_matches
        on name_matches.name_key = {{ normalize_key('cloud_employees.employee') }}
),

responsible_keys as (
    select
        'responsible_name' as source_system,
        name_map.name_key as source_key,
        name_map.manager_id,
        name_map.match_rule
    from name_map
),

final as (
    select * from user_keys
    union all
    select * from extension_keys
    union all
    select * from cloud_keys
    union all
    select * from responsible_keys
)

select * from final
