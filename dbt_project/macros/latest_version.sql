{#
    The latest version of every record of a staging model: of the rows of `relation` that
    share `key` (a column or expression, or a list of them), the one loaded last
    (`_loaded_at`, then the line in the file, `_line`). `newest_first` (optional) is a
    column of the export that orders versions before the load does (an export date, a
    last-modified time), nulls last. Expands to a select for a CTE: every column of
    `relation` plus `_version_rank` (1). The same SQL on DuckDB and Spark (a window in a
    subquery, no QUALIFY).
#}
{% macro latest_version(relation, key, newest_first=none) -%}
    {%- set keys = [key] if key is string else key -%}
    select *
    from (
        select
            {{ relation }}.*,
            row_number() over (
                partition by {{ keys | join(', ') }}
                order by {% if newest_first %}{{ newest_first }} desc nulls last, {% endif %}_loaded_at desc, _line desc
            ) as _version_rank
        from {{ relation }}
    ) as versions
    where _version_rank = 1
{%- endmacro %}

{#
    Every row of `relation` (optionally only those meeting `where`) with `recency_rank`:
    1 for the row of each `key` with the greatest `newest_first` (e.g. a deal's latest
    snapshot), then 2, 3, … Ties in `newest_first` are ranked in no set order. Expands to
    a select for a CTE.
#}
{% macro with_recency_rank(relation, key, newest_first, where=none) -%}
    select
        {{ relation }}.*,
        row_number() over (
            partition by {{ relation }}.{{ key }}
            order by {{ relation }}.{{ newest_first }} desc
        ) as recency_rank
    from {{ relation }}
    {%- if where is not none %}
    where {{ where }}
    {%- endif %}
{%- endmacro %}
