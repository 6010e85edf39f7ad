"""The dashboards' SQL for a Spark Thrift server: the spec writes DuckDB SQL (virtual datasets'
queries, metric expressions, calculated columns), and a bundle served from Spark gets each of
them transpiled to Spark SQL by sqlglot, plus the few rewrites where sqlglot's output means
something else on Spark:

- ``quantile_cont(x, q)`` and ``median(x)`` become ``percentile(x, q)`` and
  ``percentile(x, 0.5)`` (Spark's ``percentile_cont`` takes the fraction and a ``within
  group`` ordering; ``percentile`` interpolates like DuckDB's). Superset reads the SQL of a
  ``hive://`` database in sqlglot's Hive dialect and writes it back, which turns ``median``
  into a ``percentile_cont(x, 0.5)`` that Spark rejects; ``percentile`` survives that;
- a back-reference ``\\1`` in ``regexp_replace``'s replacement becomes ``$1`` (Java's
  syntax; on Spark ``\\1`` is a literal ``1``);
- ``x * 1.0`` (DuckDB's way to a fractional quotient) becomes ``cast(x as double)``: on
  Spark ``1.0`` is a decimal, and a quotient of decimals is rounded to 6 places;
- ``epoch(a - b)`` of two timestamps becomes ``unix_timestamp(a) - unix_timestamp(b)``
  (Spark's ``unix_timestamp`` takes a timestamp, not the interval of a difference).

One spec, SQL per engine: the bundle on disk holds DuckDB SQL, `bundle.build_bundle_zip`
calls `spark_dataset` on each dataset when it builds the import zip for the Thrift server.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import sqlglot
from sqlglot import exp

SOURCE_DIALECT = "duckdb"
SPARK_DIALECT = "spark"

_BACKREFERENCE = re.compile(r"\\(\d)")


def _spark_rewrites(node: exp.Expression) -> exp.Expression:
    """The rewrites where sqlglot's Spark output would run but mean something else."""
    if isinstance(node, exp.PercentileCont) and node.expression is not None:
        return exp.Anonymous(this="percentile", expressions=[node.this, node.expression])
    if isinstance(node, exp.Median):
        return exp.Anonymous(this="percentile", expressions=[node.this, exp.Literal.number("0.5")])
    if isinstance(node, exp.RegexpReplace):
        replacement = node.args.get("replacement")
        if isinstance(replacement, exp.Literal) and replacement.is_string:
            text = _BACKREFERENCE.sub(r"$\1", replacement.this)
            node.set("replacement", exp.Literal.string(text))
        return node
    if isinstance(node, exp.Mul):
        for one, other in ((node.expression, node.this), (node.this, node.expression)):
            if isinstance(one, exp.Literal) and not one.is_string and one.this == "1.0":
                return exp.Cast(this=other, to=exp.DataType.build("double"))
        return node
    if isinstance(node, (exp.TimeToUnix, exp.UnixSeconds)) and isinstance(node.this, exp.Sub):
        later, earlier = node.this.this, node.this.expression
        return exp.Paren(
            this=exp.Sub(
                this=exp.Anonymous(this="unix_timestamp", expressions=[later]),
                expression=exp.Anonymous(this="unix_timestamp", expressions=[earlier]),
            )
        )
    return node


def to_spark(sql: str) -> str:
    """One DuckDB statement or expression as Spark SQL (formatted when it spans lines)."""
    trees = sqlglot.parse(sql, read=SOURCE_DIALECT)
    if len(trees) != 1 or trees[0] is None:
        raise ValueError(f"expected one SQL statement or expression, got {len(trees)}: {sql!r}")
    tree = trees[0].transform(_spark_rewrites)
    return tree.sql(dialect=SPARK_DIALECT, pretty="\n" in sql.strip())


def spark_dataset(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A dataset YAML with its SQL, metric expressions and calculated columns in Spark SQL."""
    out = copy.deepcopy(dict(doc))
    if out.get("sql"):
        out["sql"] = to_spark(str(out["sql"])) + "\n"
    for metric in out.get("metrics") or []:
        if metric.get("expression"):
            metric["expression"] = to_spark(str(metric["expression"]))
    for column in out.get("columns") or []:
        if column.get("expression"):
            column["expression"] = to_spark(str(column["expression"]))
    return out
