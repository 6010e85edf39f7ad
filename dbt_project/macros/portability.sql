{#
    Where dbt's cross-database macros and the engines differ, the project's models call
    these instead; each has a DuckDB and a Spark (default) form with the same result.
#}

{# The n-th part of `expr` split on a literal delimiter; `part` may be a column (dbt.split_part
   on Spark needs a literal number). Out-of-range parts are ''. #}
{% macro split_part_at(expr, delimiter, part) -%}
    {{ return(adapter.dispatch('split_part_at', 'crm_warehouse')(expr, delimiter, part)) }}
{%- endmacro %}

{% macro default__split_part_at(expr, delimiter, part) -%}
    split_part({{ expr }}, {{ delimiter }}, {{ part }})
{%- endmacro %}

{% macro duckdb__split_part_at(expr, delimiter, part) -%}
    {{ dbt.split_part(expr, delimiter, part) }}
{%- endmacro %}

{#
    Model contracts on Spark. The marts' contracts declare DuckDB type names (`varchar`,
    `integer`); Spark 4 rejects `varchar` without a length, so dbt's own check (which casts
    null to each declared type) cannot run there. This one compares the built columns with
    the declared ones by name, order-insensitively, and by type family, and fails the model
    like dbt's check does, listing the columns that differ.

    The built columns' types come from the connection's cursor: Spark type names in
    process (`decimal(18,2)`, `timestamp`), Hive type ids over the Thrift server
    (`DECIMAL_TYPE`, `TIMESTAMP_TYPE`: no precision, and `timestamp` and `timestamp_ntz`
    both arrive as `TIMESTAMP_TYPE`). Where the built type carries no precision, the
    declared one is compared by its family only (`decimal(18,2)` = `DECIMAL_TYPE`); a
    different family (`varchar` against `DOUBLE_TYPE`) still fails.
#}
{% macro spark__get_assert_columns_equivalent(sql) -%}
    {%- set declared = model['columns'] -%}
    {%- if not declared -%}
        {{ exceptions.raise_contract_error([], []) }}
    {%- endif -%}
    {%- set built = get_column_schema_from_query(sql, config.get('sql_header', none)) -%}
    {%- set got = [] -%}
    {%- set bare = {} -%}
    {%- for col in built -%}
        {%- set family = portable_type(col.dtype) | string -%}
        {%- do got.append({'name': col.name | lower, 'data_type': family,
                           'formatted': (col.name | lower) ~ ' ' ~ family}) -%}
        {%- do bare.update({col.name | lower: '(' not in family}) -%}
    {%- endfor -%}
    {%- set want = [] -%}
    {%- for col in declared.values() -%}
        {%- set family = portable_type(col.data_type) | string -%}
        {%- if bare.get(col.name | lower, false) -%}
            {%- set family = family.split('(')[0] -%}
        {%- endif -%}
        {%- do want.append({'name': col.name | lower, 'data_type': family,
                            'formatted': (col.name | lower) ~ ' ' ~ family}) -%}
    {%- endfor -%}
    {%- if (want | map(attribute='formatted') | sort | list) != (got | map(attribute='formatted') | sort | list) -%}
        {%- do exceptions.raise_contract_error(want, got) -%}
    {%- endif -%}
{%- endmacro %}

{#
    A type name reduced to its family, the same on DuckDB and Spark: DuckDB and Spark
    names, and the Hive type ids a Thrift cursor reports (`STRING_TYPE`, `INT_TYPE`,
    `DECIMAL_TYPE`, ...: the name without `_TYPE`; `CHAR`/`VARCHAR` are strings there).
#}
{% macro portable_type(data_type) -%}
    {%- set t = (data_type or '') | lower | replace(' ', '') -%}
    {%- if t.endswith('_type') -%}
        {%- set t = t[:-5] -%}
    {%- endif -%}
    {%- set aliases = {
        'varchar': 'string', 'text': 'string', 'string': 'string', 'char': 'string',
        'integer': 'int', 'int': 'int', 'int4': 'int', 'int32': 'int',
        'bigint': 'bigint', 'long': 'bigint', 'int8': 'bigint', 'int64': 'bigint',
        'smallint': 'smallint', 'short': 'smallint', 'int2': 'smallint', 'int16': 'smallint',
        'tinyint': 'tinyint', 'byte': 'tinyint', 'int1': 'tinyint',
        'double': 'double', 'float8': 'double', 'doubleprecision': 'double',
        'float': 'float', 'real': 'float', 'float4': 'float',
        'boolean': 'boolean', 'bool': 'boolean',
        'timestamplocaltz': 'timestamp',
        'interval_day_time': 'interval', 'interval_year_month': 'interval',
    } -%}
    {%- if t.startswith('varchar(') or t.startswith('char(') -%}
        {{- 'string' -}}
    {%- elif t.startswith('numeric') -%}
        {{- t | replace('numeric', 'decimal') -}}
    {%- else -%}
        {{- aliases.get(t, t) -}}
    {%- endif -%}
{%- endmacro %}

{#
    Ordered string aggregation on Spark: dbt-spark's listagg drops the order (with a
    warning), so lists such as `fct_payment.invoice_ids` would come out in any order.
    Spark 4 has the standard `listagg(...) within group (order by ...)`.
#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ exceptions.raise_compiler_error("listagg with limit_num is not supported on Spark") }}
    {%- endif -%}
    listagg({{ measure }}, {{ delimiter_text }})
    {%- if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro %}

{#
    Seeds on Spark: dbt-spark's session connection substitutes the seed values into the
    INSERT without escaping, so a value with an apostrophe ("the company's website") breaks
    the statement. The values are written as escaped Spark literals here instead.
#}
{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- set batch_size = get_batch_size() -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(batch_size) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                    {%- set value = row[loop.index0] -%}
                    {%- if value is none -%}
                        cast(null as {{ type }})
                    {%- else -%}
                        cast('{{ (value | string) | replace("\\", "\\\\") | replace("'", "\\'") }}' as {{ type }})
                    {%- endif -%}
                    {%- if not loop.last %},{% endif -%}
                {%- endfor -%})
                {%- if not loop.last %},{% endif %}
            {% endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.index0 == 0 -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements[0] if statements else '') }}
{%- endmacro %}

{#
    Division, the same on every engine. A literal such as `1.0` is a decimal on Spark and
    a quotient of decimals is rounded to a scale of 6 there, while DuckDB divides in
    doubles; sums of such quotients then drift apart. Both engines divide doubles here.
    Null when the denominator is 0.
#}
{% macro ratio(numerator, denominator) -%}
    (cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0))
{%- endmacro %}

{#
    Money multiplied by an exact fraction numerator / denominator (integers), to the cent,
    rounded half away from zero on the exact product. Computed in whole cents: a double
    quotient of two integers below 2^53 is exact enough to round correctly, and is the same
    on every engine, while a product or quotient of the amount itself is not (DuckDB
    divides decimals in doubles: 3471926.61 / 6 gave 578654.4349… and rounded to .43, not
    .44; Spark rounds decimal quotients to 6 places). Exact for |amount × numerator| below
    9·10^13. Null when the denominator is 0.
#}
{% macro money_fraction(amount, numerator, denominator) -%}
    cast(
        round(
            cast(round({{ amount }} * 100) as bigint) * ({{ numerator }})
            / nullif(cast({{ denominator }} as double), 0)
        ) / 100
        as decimal(18, 2)
    )
{%- endmacro %}

{# An average amount: money divided by a count, to the cent (money_fraction). #}
{% macro money_ratio(amount, count) -%}
    {{ money_fraction(amount, 1, count) }}
{%- endmacro %}

{# Money converted at a rate: the exact decimal product rounded to the cent. #}
{% macro money_at_rate(amount, rate) -%}
    cast(round(cast({{ amount }} as decimal(38, 2)) * cast({{ rate }} as decimal(18, 6)), 2) as decimal(18, 2))
{%- endmacro %}

{# var vat_rate in basis points (0.2 -> 2000), so that VAT fractions are exact. #}
{% macro vat_rate_basis_points() -%}
    {{ return((var('vat_rate') * 10000) | round | int) }}
{%- endmacro %}

{# The VAT included in a gross amount: amount × rate / (1 + rate), to the cent. #}
{% macro vat_in_gross(amount) -%}
    {%- set bp = vat_rate_basis_points() -%}
    {{ money_fraction(amount, bp, 10000 + bp) }}
{%- endmacro %}

{# A gross amount net of VAT: amount / (1 + rate), to the cent. #}
{% macro net_of_vat(amount) -%}
    {%- set bp = vat_rate_basis_points() -%}
    {{ money_fraction(amount, 10000, 10000 + bp) }}
{%- endmacro %}

{#- A table written before a model runs (Spark: the identity-resolution rounds), replaced
    when it exists: Spark inlines CTEs, so a model reads its earlier steps from tables. -#}
{% macro spark_scratch_table(name, sql) -%}
    {%- do run_query('drop table if exists ' ~ name) -%}
    {%- do run_query('create table ' ~ name ~ ' using parquet as ' ~ sql) -%}
{%- endmacro %}

{#
    Conversion of source text to a type that never fails a build: a value that does not
    convert becomes null (DuckDB and Spark both have `try_cast`; dbt.safe_cast is a plain
    `cast` on dbt-duckdb and on dbt-spark, which fails on Spark in ANSI mode, Spark 4's
    default and its Thrift server's). Every conversion of text in the models goes through
    this macro, guarded or not: a `where` that filters the bad values out does not protect
    a plain cast (Spark may evaluate the cast first). int_unparsed_values counts the
    values it turned into null.
#}
{% macro try_cast(expr, data_type) -%}
    {{ return(adapter.dispatch('try_cast', 'crm_warehouse')(expr, data_type)) }}
{%- endmacro %}

{% macro default__try_cast(expr, data_type) -%}
    try_cast({{ expr }} as {{ data_type }})
{%- endmacro %}
