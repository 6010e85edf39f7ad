"""Check outcomes and where they are kept: Parquet under `<data>/checks/`, read as
`raw.check_results` (see `pipelines.lib.warehouse`) so dbt can feed `mart_data_quality`."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb

from pipelines.lib.quality.mask import mask_sample
from pipelines.lib.quality.rules import Batch, Rule, Suite
from pipelines.lib.warehouse import CHECK_RESULT_COLUMNS, checks_dir, sql_str


@dataclass(frozen=True)
class Outcome:
    """The result of one rule on one batch, whoever computed it (GX or plain SQL)."""

    rule: Rule
    passed: bool
    expectation: str
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed: Any = None  # observed value, or a sample of unexpected values
    details: str = ""  # bounds, notes, or the error that made the check fail


def masked(o: Outcome, suite: Suite) -> Outcome:
    """`o` with its sample of values masked where they are of a sensitive column of `suite`
    (see `pipelines.lib.quality.mask`); idempotent."""
    if o.observed is None or not suite.masks:
        return o
    kind = suite.masks.get(o.rule.columns[0]) if len(o.rule.columns) == 1 else None
    observed = mask_sample(o.observed, kind, suite.masks, suite.column_types)
    return o if observed == o.observed else replace(o, observed=observed)


def to_json(value: Any) -> str | None:
    if value is None:
        return None

    def default(v: Any) -> Any:
        if isinstance(v, (dt.date, dt.datetime, dt.time)):
            return v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat()
        if isinstance(v, decimal.Decimal):
            return float(v)
        return str(v)

    return json.dumps(value, ensure_ascii=False, default=default)


def outcome_record(o: Outcome) -> dict[str, Any]:
    """An outcome's observations as JSON-ready values (Dagster metadata, the memo)."""
    return {
        "passed": o.passed,
        "expectation": o.expectation,
        "element_count": o.element_count,
        "unexpected_count": o.unexpected_count,
        "unexpected_percent": o.unexpected_percent,
        "observed": to_json(o.observed),
        "details": o.details or None,
    }


def results_path(data_dir: Path, suite: Suite, run_id: str, checked_at: dt.datetime) -> Path:
    safe_run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return (
        checks_dir(data_dir)
        / checked_at.strftime("%Y-%m-%d")
        / f"{suite.layer}__{suite.table}__{safe_run}.parquet"
    )


def write_results(
    data_dir: Path,
    suite: Suite,
    batch: Batch,
    outcomes: list[Outcome],
    run_id: str,
    checked_at: dt.datetime,
) -> Path:
    """One Parquet file per run and table (atomic rename), in the `raw.check_results` schema."""
    target = results_path(data_dir, suite, run_id, checked_at)
    target.parent.mkdir(parents=True, exist_ok=True)
    mask_kept_results(data_dir, suite)
    rows = [
        (
            run_id,
            checked_at,
            suite.layer,
            suite.system,
            suite.table,
            batch.load_id,
            o.rule.name,
            o.expectation,
            o.rule.severity,
            o.passed,
            o.element_count,
            o.unexpected_count,
            o.unexpected_percent,
            to_json(o.observed),
            o.details or None,
        )
        for o in (masked(o, suite) for o in outcomes)  # whoever computed them
    ]
    _write(target, rows)
    return target


def _write(target: Path, rows: list[tuple[Any, ...]]) -> None:
    con = duckdb.connect()
    try:
        cols = ", ".join(f'"{n}" {t}' for n, t in CHECK_RESULT_COLUMNS.items())
        con.execute(f"create temp table r ({cols})")
        if rows:
            marks = ", ".join("?" for _ in CHECK_RESULT_COLUMNS)
            con.executemany(f"insert into r values ({marks})", rows)
        tmp = target.with_name(target.name + ".tmp")
        con.execute(f"copy r to {sql_str(str(tmp))} (format parquet)")
        os.replace(tmp, target)
    finally:
        con.close()


MASKED_MARK = "masked-samples-v1"


def mask_kept_results(data_dir: Path, suite: Suite) -> int:
    """Mask, once per table, the samples of sensitive columns in the results that a version
    which stored them unmasked wrote; returns the files rewritten. Done when the table's
    next results are written; a mark under `<data>/checks/masked/` records it."""
    mark = checks_dir(data_dir) / "masked" / f"{suite.layer}__{suite.table}.{MASKED_MARK}"
    if mark.exists():
        return 0
    rules = {r.name: r for r in suite.rules}
    names = list(CHECK_RESULT_COLUMNS)
    at_layer, at_table = names.index("layer"), names.index("table_name")
    at_check, at_observed = names.index("check_name"), names.index("observed")
    rewritten = 0
    pattern = f"*/{suite.layer}__{suite.table}__*.parquet"
    for path in sorted(checks_dir(data_dir).glob(pattern)) if suite.masks else []:
        con = duckdb.connect()
        try:
            select = ", ".join(f'"{n}"' for n in names)
            rows = con.execute(f"select {select} from read_parquet({sql_str(str(path))})")
            rows = [list(r) for r in rows.fetchall()]
        except duckdb.Error:
            continue  # not a results file of this schema: left as it is
        finally:
            con.close()
        changed = False
        for row in rows:
            if (row[at_layer], row[at_table]) != (suite.layer, suite.table) or not row[at_observed]:
                continue
            rule = rules.get(row[at_check])
            kind = suite.masks.get(rule.columns[0]) if rule and len(rule.columns) == 1 else None
            try:
                observed = json.loads(row[at_observed])
            except ValueError:
                observed = row[at_observed]
            value = mask_sample(observed, kind, suite.masks, suite.column_types)
            if to_json(value) != row[at_observed]:
                row[at_observed] = to_json(value)
                changed = True
        if changed:
            _write(path, [tuple(r) for r in rows])
            rewritten += 1
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text("samples of sensitive columns in these results are masked\n")
    return rewritten
