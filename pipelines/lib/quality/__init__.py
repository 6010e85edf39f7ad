"""Data-quality checks: suites as code, run with Great Expectations inside DuckDB.

    rules.py    what is checked (derived from sources/ and quality/suites.yml); no GX import
    duck.py     the DuckDB connection, validity macros, the batch of a suite
    gx.py       GX Core on DuckDB through the SQL path (the fix for GX issue #11579)
    sql.py      the same rules in plain SQL (the baseline of the cost measurement)
    memo.py     outcomes of a raw load already checked, reused by the next runs
    results.py  outcomes, stored as Parquet and read as `raw.check_results`
    docs.py     the GX Data Docs static site

`run_suite` is the one entry point Dagster and the benchmark use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from pipelines.lib.quality.duck import prepare_batch
from pipelines.lib.quality.results import Outcome, masked
from pipelines.lib.quality.rules import Batch, Bound, Suite, bind

__all__ = ["DOCS_INDEX_TAG", "LazyChecker", "Outcome", "run_suite", "utcnow"]

#: Run tag: when "end-of-run", check ops leave the Data Docs index to the caller (crmwh run).
DOCS_INDEX_TAG = "crmwh/data_docs_index"


def utcnow() -> dt.datetime:
    """Naive UTC, like the lineage timestamps (`_loaded_at`) of the raw layer."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_suite(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    engine: str = "gx",
    checker: Any = None,
    now: dt.datetime | None = None,
    memo_file: Path | None = None,
    run_id: str = "adhoc",
) -> tuple[Batch, list[Outcome]]:
    """Check the batch of `suite` (latest load, or the staging model) on `con`.

    engine="gx": with Great Expectations (pass a `gx.GxChecks` on `con` to reuse it across
    suites, or a `LazyChecker` to import GX only when a rule is evaluated); engine="sql": the
    same rules in plain SQL. Rules whose evaluation raises count as failed, with the error in
    `details`: a broken suite must not pass silently.

    `memo_file` (raw suites): reuse the stored outcomes of a load already checked, see
    `pipelines.lib.quality.memo`; only the rules whose inputs changed are evaluated.
    """
    now = now or utcnow()
    batch = prepare_batch(con, suite, now)
    if batch.empty:
        return batch, [
            Outcome(r, True, "skipped", details="no rows loaded yet") for r in suite.rules
        ]
    bounds = [bind(r, batch, now) for r in suite.rules]
    previous: dict[str, dict[str, Any]] = {}
    reused: dict[str, Outcome] = {}
    if memo_file is not None:
        from pipelines.lib.quality import memo

        previous = memo.load(memo_file, batch)
        for b in bounds:
            o = memo.reuse(b, batch, previous.get(b.rule.name))
            if o is not None:
                reused[b.rule.name] = o
    todo = [b for b in bounds if b.rule.name not in reused]
    # by rule name: GX returns its results in an order of its own
    evaluated = {o.rule.name: o for o in _evaluate(con, suite, batch, todo, engine, checker)}
    # samples of sensitive columns are masked before anything stores or prints them
    outcomes = [masked(reused.get(b.rule.name) or evaluated[b.rule.name], suite) for b in bounds]
    if memo_file is not None:
        from pipelines.lib.quality import memo

        memo.save(memo_file, batch, bounds, outcomes, run_id, previous, set(evaluated))
    return batch, outcomes


def _evaluate(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    batch: Batch,
    bounds: list[Bound],
    engine: str,
    checker: Any,
) -> list[Outcome]:
    if not bounds:
        return []
    if engine == "sql":
        from pipelines.lib.quality import sql

        outcomes = []
        for b in bounds:
            try:
                outcomes.append(sql.evaluate(con, b, batch))
            except duckdb.Error as exc:
                outcomes.append(Outcome(b.rule, False, "sql", details=str(exc).splitlines()[0]))
        return outcomes
    if checker is None:
        from pipelines.lib.quality.gx import GxChecks

        checker = GxChecks(con)
        try:
            return checker.validate(suite, batch, bounds)
        finally:
            checker.close()
    return checker.validate(suite, batch, bounds)


class LazyChecker:
    """A GX checker made on first use: a suite whose outcomes are all reused imports no GX."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._checker: Any = None

    def validate(self, suite: Suite, batch: Batch, bounds: list[Bound]) -> list[Outcome]:
        if self._checker is None:
            self._checker = self._factory()
        return self._checker.validate(suite, batch, bounds)

    def close(self) -> None:
        if self._checker is not None:
            self._checker.close()


def docs_dir(data_dir: Path) -> Path:
    """Where the GX Data Docs static site is built (`index.html`)."""
    return data_dir / "data_docs"


def data_docs_enabled(quality_settings: dict[str, Any]) -> bool:
    """`quality: {data_docs: false}` in settings.yml turns the Data Docs site off."""
    return bool(quality_settings.get("data_docs", True))
