{#
    The raw layer as relations, on engines where the pipeline does not create them.

    On DuckDB, pipelines/lib/warehouse.py creates `raw.*` as views over the Parquet raw
    layer before dbt runs (nothing to do here). On Spark this on-run-start hook declares
    the same relations as external tables over the same files: one table per source of
    schema `raw`, with the columns and types its sources .yml declares (the raw contract),
    over `<data>/raw/<system>/<entity>/*.parquet`, `<data>/quarantine/**`,
    `<data>/checks/**` (Parquet) and `<data>/manifest/*.json`, `<data>/deliveries/*.json`
    (newline-delimited JSON). `<data>` is the absolute path in CRMWH_DBT_DATA. A folder
    without files reads as an empty table, like the DuckDB side's empty views.
#}
{% macro raw_layer() -%}
    {{ return(adapter.dispatch('raw_layer', 'crm_warehouse')()) }}
{%- endmacro %}

{% macro default__raw_layer() -%}
    select 1
{%- endmacro %}

{% macro spark__raw_layer() -%}
    {%- if execute -%}
    {%- set data = env_var('CRMWH_DBT_DATA', '') -%}
    {%- if not data.startswith('/') and not '://' in data -%}
        {{ exceptions.raise_compiler_error("CRMWH_DBT_DATA must be the absolute path (or URI) of the raw layer's data folder, got '" ~ data ~ "'") }}
    {%- endif -%}
    {%- set bookkeeping = {
        'quarantine': ('quarantine', 'parquet'),
        'check_results': ('checks', 'parquet'),
        'load_manifest': ('manifest', 'json'),
        'file_delivery': ('deliveries', 'json'),
    } -%}
    {%- do run_query('create database if not exists raw') -%}
    {%- for node in graph.sources.values() if node.schema == 'raw' -%}
        {%- if node.name in bookkeeping -%}
            {%- set folder, fmt = bookkeeping[node.name] -%}
            {%- set location = data ~ '/' ~ folder -%}
        {%- else -%}
            {%- set parts = node.name.split('__', 1) -%}
            {%- set location = data ~ '/raw/' ~ parts[0] ~ '/' ~ parts[1] -%}
            {%- set fmt = 'parquet' -%}
        {%- endif -%}
        {%- set cols = [] -%}
        {%- for col in node.columns.values() -%}
            {%- do cols.append('`' ~ col.name ~ '` ' ~ spark_type(col.data_type)) -%}
        {%- endfor -%}
        {%- do run_query('drop table if exists raw.`' ~ node.name ~ '`') -%}
        {#- JSON timestamps: a date alone (freshness of daily files) is midnight, as on DuckDB -#}
        {%- do run_query(
            'create table raw.`' ~ node.name ~ '` (' ~ cols | join(', ') ~ ') using ' ~ fmt
            ~ " options (path '" ~ location ~ "', recursiveFileLookup 'true', pathGlobFilter '*." ~ fmt ~ "'"
            ~ (", timestampFormat 'yyyy-MM-dd[ HH:mm:ss[.SSSSSS]]'" if fmt == 'json' else '')
            ~ ')'
        ) -%}
    {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}

{# A DuckDB type name as declared in the sources .yml -> the Spark type. #}
{% macro spark_type(data_type) -%}
    {%- set t = (data_type or 'varchar') | lower | trim -%}
    {{- 'string' if t in ('varchar', 'text') else t -}}
{%- endmacro %}
