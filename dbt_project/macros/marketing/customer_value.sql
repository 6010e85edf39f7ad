{#
    Customer value helpers (mart_customer_profitability). Portable SQL: power(), floor(),
    least(), percent_rank() exist in DuckDB and Spark alike.
#}

{#
    CLV as a 5-year NPV (metric contract): Σ_{t=1..years} m · r^(t−1) / (1 + d)^t, where m
    is the trailing 12-month contribution margin, r the retention rate and d the discount
    rate. The sum is unrolled at compile time (years = var clv_years, default 5), so that
    the SQL shows every term:
    m·r^0/(1+d)^1 + m·r^1/(1+d)^2 + … + m·r^4/(1+d)^5. Null when m or r is null.
#}
{% macro clv_npv(margin, retention, discount_rate=none, years=none) -%}
    {%- set d = var('clv_discount_rate', 0.16) if discount_rate is none else discount_rate -%}
    {%- set n = (var('clv_years', 5) if years is none else years) | int -%}
    {%- set terms = [] -%}
    {%- for t in range(1, n + 1) -%}
        {%- do terms.append('power(' ~ retention ~ ', ' ~ (t - 1) ~ ') / power(1 + (' ~ d ~ '), ' ~ t ~ ')') -%}
    {%- endfor -%}
    (({{ margin }}) * ({{ terms | join(' + ') }}))
{%- endmacro %}

{#
    Quintile score 1–5 of a value within a partition, from its percent rank:
    1 + floor(5 · percent_rank), capped at 5. Ties share a score (the lowest rank of the
    tie), so a mass of equal values (e.g. zero purchases) never spreads over several
    scores. `order_by` orders from worst to best (`recency_days desc`, `monetary`).
#}
{% macro quintile_score(order_by, partition_by) -%}
    cast(least(5, 1 + floor(5 * percent_rank() over (partition by {{ partition_by }} order by {{ order_by }}))) as integer)
{%- endmacro %}
