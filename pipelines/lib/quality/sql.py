"""The same rules in plain DuckDB SQL: the baseline GX is measured against (and a second
opinion the tests compare GX with). Semantics follow GX's: nulls are ignored by value checks
(`mostly` is a share of non-null rows), `not_null` counts over all rows, uniqueness counts
every row of a duplicated key."""

from __future__ import annotations

import re

import duckdb

from pipelines.lib.quality.results import Outcome
from pipelines.lib.quality.rules import Batch, Bound, Rule

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def q(name: str) -> str:
    """A column reference: identifiers are quoted, expressions (`extract(year from x)`) kept."""
    return f'"{name}"' if _IDENT.match(name) else f"({name})"


def literal(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if hasattr(value, "isoformat"):
        kind = "timestamp" if hasattr(value, "hour") else "date"
        return f"{kind} '{value.isoformat(sep=' ') if kind == 'timestamp' else value.isoformat()}'"
    return str(value)


def condition(b: Bound) -> str:
    """The per-row SQL condition a non-null value must satisfy (value kinds only)."""
    c = q(b.rule.column)
    kind = b.rule.kind
    if kind == "min":
        return f"{c} >= {literal(b.min_value)}"
    if kind == "date_range":
        return f"{c} between {literal(b.min_value)} and {literal(b.max_value)}"
    if kind == "inn":
        return f"crmwh_inn_is_valid({c})"
    if kind == "phone":
        return f"crmwh_is_e164({c})"
    if kind == "email":
        return f"crmwh_email_is_valid({c})"
    if kind == "known_values":
        values = ", ".join(literal(v) for v in b.values) or "null"
        return f"crmwh_label_key({c}) in ({values})"
    raise ValueError(f"{kind} is not a value rule")


def reference_violation(rule: Rule) -> str:
    """Row condition of a `references` rule: the value is set and found in no target."""
    c = q(rule.column)
    targets = rule.params.get("targets") or [(rule.params["relation"], rule.params["column"])]
    found = " union all ".join(
        f"select {q(col)} from {rel} where {q(col)} is not null" for rel, col in targets
    )
    cond = f"{c} is not null and {c} not in ({found})"
    if rule.params.get("where"):
        cond = f"({rule.params['where']}) and {cond}"
    return cond


def _share_ok(unexpected: int, total: int, mostly: float | None) -> bool:
    if total == 0:
        return True
    return (total - unexpected) / total >= (1.0 if mostly is None else mostly)


def evaluate(con: duckdb.DuckDBPyConnection, b: Bound, batch: Batch) -> Outcome:
    """Run one bound rule against the batch relation; one query per rule."""
    rule, rel = b.rule, batch.relation
    kind = rule.kind
    if kind == "not_null":
        n, bad = con.execute(
            f"select count(*), count(*) - count({q(rule.column)}) from {rel}"
        ).fetchone()
        return Outcome(
            rule, _share_ok(bad, n, rule.mostly), "sql", n, bad, 100.0 * bad / n if n else None
        )
    if kind in {"min", "date_range", "inn", "phone", "email", "known_values"}:
        c = q(rule.column)
        n, nonnull, bad = con.execute(
            f"select count(*), count({c}), count(*) filter (where {c} is not null and not ({condition(b)})) "
            f"from {rel}"
        ).fetchone()
        pct = 100.0 * bad / nonnull if nonnull else None
        return Outcome(rule, _share_ok(bad, nonnull, rule.mostly), "sql", n, bad, pct)
    if kind == "unique":
        cols = [q(c) for c in rule.columns]
        keep = " or ".join(f"{c} is not null" for c in cols)
        n, bad = con.execute(
            f"select count(*), count(*) filter (where _n > 1) from ("
            f"select count(*) over (partition by {', '.join(cols)}) as _n from {rel} where {keep})"
        ).fetchone()
        return Outcome(rule, bad == 0, "sql", n, bad, 100.0 * bad / n if n else None)
    if kind == "volume":
        (n,) = con.execute(f"select count(*) from {rel}").fetchone()
        ok = (b.min_value is None or n >= b.min_value) and (b.max_value is None or n <= b.max_value)
        return Outcome(rule, ok, "sql", n, None, None, n, b.note)
    if kind == "freshness":
        (mx,) = con.execute(f"select max({q(rule.column)}) from {rel}").fetchone()
        return Outcome(rule, mx is not None and mx >= b.min_value, "sql", None, None, None, mx)
    if kind == "references":
        (bad,) = con.execute(
            f"select count(*) from {rel} as b where {reference_violation(rule)}"
        ).fetchone()
        return Outcome(rule, bad == 0, "sql", None, bad, None, bad)
    raise ValueError(f"unknown rule kind {kind}")
