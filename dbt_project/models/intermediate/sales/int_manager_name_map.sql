{#
    Responsible-person names typed in Bitrix and 1C -> manager_id. A name is matched to a
    Salesforce user (whose Id is the canonical manager_id, the one PBX extensions map to)
    first by the whole normalised name, then by its first two words in either order
    («Иванов Иван Петрович» = «Иван Иванов»); only a match to exactly one user counts.
    Unmatched names get the stable key `name:<normalised name>`.
#}
with

bx_deal_snapshots as (
    select * from {{ ref('stg_bitrix__deal_snapshot') }}
),

bx_leads as (
    select * from {{ ref('stg_bitrix__lead') }}
),

onec_invoices as (
    select * from {{ ref('stg_onec__invoice') }}
),

sf_users as (
    select * from {{ ref('stg_salesforce__user') }}
),

names as (
    select
        bx_deal_snapshots.responsible_key as name_key,
        bx_deal_snapshots.responsible_name as name
    from bx_deal_snapshots
    union all
    select
        bx_leads.responsible_key as name_key,
        bx_leads.responsible_name as name
    from bx_leads
    union all
    select
        onec_invoices.responsible_key as name_key,
        onec_invoices.responsible_name as name
    from onec_invoices
),

distinct_names as (
    select
        name_key,
        min(name) as name
    from names
    where name_key is not null
    group by name_key
),

users as (
    select
        sf_users.user_id,
        sf_users.user_name_key,
        {{ _name_token_pair('sf_users.user_name_key') }} as token_pair
    from sf_users
    where sf_users.user_name_key is not null
),

name_candidates as (
    {{ user_name_candidates('distinct_names', 'users') }}
),

final as (
    select
        distinct_names.name_key,
        distinct_names.name,
        case
            when exact_matches.candidates = 1 then exact_matches.user_id
            when token_matches.candidates = 1 then token_matches.user_id
            else 'name:' || distinct_names.name_key
        end as manager_id,
        case
            when exact_matches.candidates = 1 then 'exact_name'
            when token_matches.candidates = 1 then 'name_tokens'
            when coalesce(exact_matches.candidates, 0) > 1 or coalesce(token_matches.candidates, 0) > 1 then 'ambiguous'
            else 'unmatched'
        end as match_rule
    from distinct_names
    left join name_candidates as exact_matches
        on
            distinct_names.name_key = exact_matches.name_key
            and exact_matches.match_rule = 'exact_name'
    left join name_candidates as token_matches
        on
            distinct_names.name_key = token_matches.name_key
            and token_matches.match_rule = 'name_tokens'
)

select * from final
