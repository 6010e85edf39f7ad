{#
    Masked marts: schema `marts_masked` holds one view per mart table, with the columns
    that carry customers' phones and e-mails masked. Roles that may not see contacts
    (Superset's Analyst, through SQL Lab) are granted this schema instead of `marts`.

    Which columns are masked is declared next to the column, in the marts' yml:
        meta: {mask: phone}          E.164 or as-dialled number: +79*******67
        meta: {mask: email}          first character of the mailbox, then the domain: i***@mail.ru
        meta: {mask: contact_name}   a display name that fell back to the customer's phone
                                     or e-mail (dim_customer.name) is masked like them
    A column without `mask` is passed through unchanged. The views are (re)created at the
    end of every run, for every mart that exists, so a new mart or a new masked column
    needs no other change here.
#}

{% macro mask_phone(expr) -%}
    case
        when {{ expr }} is null then null
        {#- short numbers are extensions and queues, not customers #}
        when length({{ expr }}) <= 6 then {{ expr }}
        else left({{ expr }}, 3) || repeat('*', length({{ expr }}) - 5) || right({{ expr }}, 2)
    end
{%- endmacro %}

{% macro mask_email(expr) -%}
    case
        when {{ expr }} is null then null
        when {{ dbt.position("'@'", expr) }} = 0 then repeat('*', length({{ expr }}))
        else left({{ expr }}, 1) || '***' || substr({{ expr }}, {{ dbt.position("'@'", expr) }})
    end
{%- endmacro %}

{% macro masked_column_sql(column_name, mask, relation_columns) -%}
    {%- if mask == 'phone' -%}
        {{ mask_phone(column_name) }}
    {%- elif mask == 'email' -%}
        {{ mask_email(column_name) }}
    {%- elif mask == 'contact_name' -%}
        {%- set phones = [] -%}
        {%- set emails = [] -%}
        {%- for other, other_mask in relation_columns.items() -%}
            {%- if other_mask == 'phone' %}{% do phones.append(other) %}{% endif -%}
            {%- if other_mask == 'email' %}{% do emails.append(other) %}{% endif -%}
        {%- endfor -%}
        case
        {%- for p in phones %}
            when {{ column_name }} = {{ p }} then {{ mask_phone(column_name) }}
        {%- endfor %}
        {%- for e in emails %}
            when {{ column_name }} = {{ e }} then {{ mask_email(column_name) }}
        {%- endfor %}
            else {{ column_name }}
        end
    {%- else -%}
        {{ exceptions.raise_compiler_error("unknown mask '" ~ mask ~ "' on column " ~ column_name) }}
    {%- endif -%}
{%- endmacro %}

{% macro create_masked_marts(schema_name='marts_masked') %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {#- Spark's targets have no database (catalog) -#}
    {%- set database = target.database if target.database is defined else none -%}
    {%- set target_schema = api.Relation.create(database=database, schema=schema_name) -%}
    {%- do adapter.create_schema(target_schema) -%}
    {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.config.schema == 'marts'
            and node.config.materialized in ('table', 'incremental', 'view') -%}
        {%- set source = adapter.get_relation(
                database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- if source is not none -%}
            {%- set masks = {} -%}
            {%- for name, col in node.columns.items() -%}
                {%- set mask = col.meta.get('mask') or (col.config or {}).get('meta', {}).get('mask') -%}
                {%- if mask %}{% do masks.update({name: mask}) %}{% endif -%}
            {%- endfor -%}
            {%- set select_list = [] -%}
            {%- for col in adapter.get_columns_in_relation(source) -%}
                {%- set name = col.name -%}
                {%- if name in masks -%}
                    {%- do select_list.append(masked_column_sql(name, masks[name], masks) ~ ' as ' ~ name) -%}
                {%- else -%}
                    {%- do select_list.append(name) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- set view = api.Relation.create(
                    database=database, schema=schema_name, identifier=node.alias, type='view') -%}
            {#- no catalog in the view's text: the file is published under another name #}
            {%- do run_query(
                    'create or replace view ' ~ view.include(database=False) ~ ' as select '
                    ~ select_list | join(', ') ~ ' from ' ~ source.include(database=False)) -%}
        {%- endif -%}
    {%- endfor -%}
    {#- run_query opened a transaction on adapters that have them: keep its work #}
    {%- do adapter.commit() -%}
    {{ return('') }}
{% endmacro %}
