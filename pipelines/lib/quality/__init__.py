"""Data-quality checks (issue 4): suites as code, run with Great Expectations inside DuckDB.

    rules.py    what is checked (derived from sources/ and quality/suites.yml); no GX import
    duck.py     the DuckDB connection, validity macros, the batch of a suite
    gx.py       GX Core on DuckDB through the SQL path (the fix for GX issue #11579)
    sql.py      the same rules in plain SQL (the baseline of the cost measurement)
    results.py  outcomes, stored as Parquet and read as `raw.check_results`
    docs.py     the GX Data Docs static site

`run_suite` is the one entry point Dagster and the benchmark use.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb

from pipelines.lib.quality.duck import prepare_batch
from pipelines.lib.quality.results import Outcome
from pipelines.lib.quality.rules import Batch, Suite, bind

__all__ = ["Outcome", "run_suite", "utcnow"]


def utcnow() -> dt.datetime:
    """Naive UTC, like the lineage timestamps (`_loaded_at`) of the raw layer."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_suite(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    engine: str = "gx",
    checker: Any = None,
    now: dt.datetime | None = None,
) -> tuple[Batch, list[Outcome]]:
    """Check the batch of `suite` (latest load, or the staging model) on `con`.

    engine="gx": with Great Expectations (pass a `gx.GxChecks` on `con` to reuse it across
    suites); engine="sql": the same rules in plain SQL. Rules whose evaluation raises count
    as failed, with the error in `details`: a broken suite must not pass silently.
    """
    now = now or utcnow()
    batch = prepare_batch(con, suite, now)
    if batch.empty:
        return batch, [
            Outcome(r, True, "skipped", details="no rows loaded yet") for r in suite.rules
        ]
    bounds = [bind(r, batch, now) for r in suite.rules]
    if engine == "sql":
        from pipelines.lib.quality import sql

        outcomes = []
        for b in bounds:
            try:
                outcomes.append(sql.evaluate(con, b, batch))
            except duckdb.Error as exc:
                outcomes.append(Outcome(b.rule, False, "sql", details=str(exc).splitlines()[0]))
        return batch, outcomes
    if checker is None:
        from pipelines.lib.quality.gx import GxChecks

        checker = GxChecks(con)
        try:
            return batch, checker.validate(suite, batch, bounds)
        finally:
            checker.close()
    return batch, checker.validate(suite, batch, bounds)


def docs_dir(data_dir: Path) -> Path:
    """Where the GX Data Docs static site is built (`index.html`)."""
    return data_dir / "data_docs"
