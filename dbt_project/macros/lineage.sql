{# The lineage columns every raw row carries (pipelines/lib/mappings.py), kept in staging. #}
{% macro lineage_columns(relation_alias=none) -%}
    {%- set prefix = relation_alias ~ '.' if relation_alias else '' -%}
    {{ prefix }}_source_file as _source_file,
    {{ prefix }}_line as _line,
    {{ prefix }}_file_sha256 as _file_sha256,
    {{ prefix }}_load_id as _load_id,
    {{ prefix }}_loaded_at as _loaded_at
{%- endmacro %}
