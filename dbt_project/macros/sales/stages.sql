{#
    Every label a pipeline stage is known by: its name and, where configured, its code
    (`label_key`, the normalised key), with the configured stage it stands for. A select
    for a CTE over `pipeline_stages` (a relation with the columns of int_pipeline_stages).
#}
{% macro stage_labels(pipeline_stages='pipeline_stages') -%}
    select
        pipeline,
        stage_key as label_key,
        stage
    from {{ pipeline_stages }}
    union
    select
        pipeline,
        stage_code_key as label_key,
        stage
    from {{ pipeline_stages }}
    where stage_code_key is not null
{%- endmacro %}
