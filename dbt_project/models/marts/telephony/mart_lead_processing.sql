{#
    Lead processing per month × source channel × manager (metric "Lead processing" of the
    sales management contract and "Ignored leads" of the lost revenue contract): the leads
    created in the month (Salesforce and Bitrix), by the channel of their source and their
    owner, counted as a cohort — processed, ignored and converted say what became of the
    month's new leads (int_lead_first_response).
#}
with

leads as (
    select * from {{ ref('int_lead_first_response') }}
),

aggregated as (
    select
        leads.created_month as month,
        leads.channel,
        leads.manager_id,
        count(*) as new_leads,
        sum(case when leads.is_processed then 1 else 0 end) as processed_leads,
        sum(case when leads.is_ignored then 1 else 0 end) as ignored_leads,
        sum(case when leads.is_converted then 1 else 0 end) as converted_leads,
        sum(case when leads.is_ignored then 0 else 1 end) as responded_in_window_leads,
        sum(case when leads.awaiting_response then 1 else 0 end) as awaiting_response_leads,
        sum(case when leads.source_system = 'salesforce' then 1 else 0 end) as salesforce_leads,
        sum(case when leads.source_system = 'bitrix' then 1 else 0 end) as bitrix_leads,
        {{ percentile_cont('leads.first_response_working_minutes', 0.5) }} as median_first_response_minutes
    from leads
    where leads.created_month is not null
    group by
        leads.created_month,
        leads.channel,
        leads.manager_id
),

final as (
    select
        cast(month as date) as month,
        cast(channel as {{ dbt.type_string() }}) as channel,
        cast(manager_id as {{ dbt.type_string() }}) as manager_id,
        cast(new_leads as integer) as new_leads,
        cast(processed_leads as integer) as processed_leads,
        cast(ignored_leads as integer) as ignored_leads,
        cast(converted_leads as integer) as converted_leads,
        cast(responded_in_window_leads as integer) as responded_in_window_leads,
        cast(awaiting_response_leads as integer) as awaiting_response_leads,
        cast(salesforce_leads as integer) as salesforce_leads,
        cast(bitrix_leads as integer) as bitrix_leads,
        cast(median_first_response_minutes as double) as median_first_response_minutes
    from aggregated
)

select * from final
