"""Great Expectations (GX Core 1.x) on DuckDB, through the SQL path, in an ephemeral context.

Why this module exists: GX 1.24's SQL datasource over duckdb-engine reports every
expectation as failed (`MetricResolutionError: list index out of range`, GX issue #11579).
GX runs `engine.connect()`, executes, leaves the `with` block and only then calls
`.fetchall()`; leaving the block rolls the connection back and, in DuckDB, a connection *is*
its cursor, so the rollback discards the pending result and GX reads zero rows. Separately,
the fluent datasource builds two engines (one to test assets, one to compute metrics) that
with `duckdb:///:memory:` would be two different empty databases.

The fix, without patching GX: every engine GX builds gets its DB-API connection from a
`creator` that returns ONE facade over the caller's DuckDB connection (`poolclass=StaticPool`),
so all of GX sees the views prepared by the caller; the facade's cursor fetches a result when
the statement runs (as client-side cursors of other drivers do), so closing or rolling back
the connection can no longer lose it; the facade never closes the DuckDB connection, whose
owner does. Metrics are computed by DuckDB (GX compiles them to SQL); nothing is pulled
into pandas.

GX's column reflection on duckdb-engine fails (it queries `pg_catalog.pg_collation`), and
GX's fallback ignores the schema name, so each batch is a schema-less temp view
(`batch__<layer>__<table>`, see `duck.prepare_batch`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # before GX is imported: no network

import duckdb  # noqa: E402
import great_expectations as gx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from great_expectations.core.expectation_suite import ExpectationSuite  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.execution_engine import SqlAlchemyExecutionEngine  # noqa: E402
from great_expectations.expectations.expectation import ColumnMapExpectation  # noqa: E402
from great_expectations.expectations.metrics.map_metric_provider import (  # noqa: E402
    ColumnMapMetricProvider,
    column_condition_partial,
)
from sqlalchemy.pool import StaticPool  # noqa: E402

from pipelines.lib.quality.mask import mask_sample  # noqa: E402
from pipelines.lib.quality.results import Outcome  # noqa: E402
from pipelines.lib.quality.rules import BLOCKING, Batch, Bound, Suite  # noqa: E402
from pipelines.lib.quality.sql import q, reference_violation  # noqa: E402

# --------------------------------------------------------------------------- connection


class _BufferedCursor:
    """DB-API cursor over a DuckDB connection that fetches each result when it executes."""

    arraysize = 1

    def __init__(self, con: duckdb.DuckDBPyConnection, owner: _SharedConnection) -> None:
        self._con = con
        self._owner = owner
        self._rows: list[tuple] = []
        self._pos = 0
        self.description: Any = None
        self.rowcount = -1

    def execute(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        if parameters is None:
            self._con.execute(statement)
        else:
            self._con.execute(statement, parameters)
        self.description = self._con.description
        self._rows = self._con.fetchall() if self.description else []
        self._pos = 0
        self.rowcount = len(self._rows) if self.description else -1

    def executemany(self, statement: str, parameters: Any = None, context: Any = None) -> None:
        self._con.executemany(statement, list(parameters) if parameters else [])
        self.description, self._rows, self._pos = None, [], 0

    def fetchone(self) -> tuple | None:
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        out = self._rows[self._pos : self._pos + (size or self.arraysize)]
        self._pos += len(out)
        return out

    def fetchall(self) -> list[tuple]:
        out = self._rows[self._pos :]
        self._pos = len(self._rows)
        return out

    def close(self) -> None:
        self._rows = []

    @property
    def connection(self) -> _SharedConnection:
        return self._owner


class _SharedConnection:
    """The DB-API connection every GX engine gets: one DuckDB connection, never closed here.

    Transaction control is a no-op (autocommit): GX only reads, and an open transaction
    would hide views the caller creates between validations.
    """

    autocommit = True
    closed = False

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.notices: list[str] = []

    def cursor(self) -> _BufferedCursor:
        return _BufferedCursor(self._con, self)

    def begin(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def engine_kwargs(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """`create_engine` kwargs that make any GX engine use `con` (see the module docstring)."""
    shared = _SharedConnection(con)
    return {"poolclass": StaticPool, "creator": lambda: shared}


def duckdb_engine(con: duckdb.DuckDBPyConnection) -> sa.Engine:
    """A SQLAlchemy engine over `con` with the same fix (for direct SqlAlchemyExecutionEngine use)."""
    return sa.create_engine("duckdb:///:memory:", **engine_kwargs(con))


# --------------------------------------------------------------------------- expectations
# Validity rules that no built-in expectation expresses, as column map expectations whose
# row condition is a DuckDB macro (installed by `duck.install_macros`): GX computes
# unexpected counts, `mostly` and samples of bad values as for any built-in one.


class ColumnValuesValidInn(ColumnMapMetricProvider):
    condition_metric_name = "column_values.crmwh_valid_inn"

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: Any, **kwargs: Any) -> Any:
        return sa.func.crmwh_inn_is_valid(column, type_=sa.Boolean()).is_(True)


class ExpectColumnValuesToBeValidInn(ColumnMapExpectation):
    """Values are Russian taxpayer numbers (ИНН) with valid check digits (10 or 12 digits)."""

    map_metric = "column_values.crmwh_valid_inn"
    success_keys = ("mostly",)
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["crm-warehouse"], "contributors": []}


class ColumnValuesE164Phone(ColumnMapMetricProvider):
    condition_metric_name = "column_values.crmwh_e164_phone"

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: Any, **kwargs: Any) -> Any:
        return sa.func.crmwh_is_e164(column, type_=sa.Boolean()).is_(True)


class ExpectColumnValuesToBeE164Phone(ColumnMapExpectation):
    """Values normalise to an E.164 phone number (8XXX -> +7XXX, extensions dropped)."""

    map_metric = "column_values.crmwh_e164_phone"
    success_keys = ("mostly",)
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["crm-warehouse"], "contributors": []}


class ColumnValuesValidEmail(ColumnMapMetricProvider):
    condition_metric_name = "column_values.crmwh_valid_email"

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: Any, **kwargs: Any) -> Any:
        return sa.func.crmwh_email_is_valid(column, type_=sa.Boolean()).is_(True)


class ExpectColumnValuesToBeValidEmail(ColumnMapExpectation):
    """Values are e-mail addresses (the first of a list): name@domain.tld."""

    map_metric = "column_values.crmwh_valid_email"
    success_keys = ("mostly",)
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["crm-warehouse"], "contributors": []}


class ColumnValuesKnownLabel(ColumnMapMetricProvider):
    condition_metric_name = "column_values.crmwh_known_label"
    condition_value_keys = ("value_set",)

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column: Any, value_set: Sequence[str], **kwargs: Any) -> Any:
        key = sa.func.crmwh_label_key(column, type_=sa.String())
        return key.in_(list(value_set)) if value_set else sa.false()


class ExpectColumnValuesToBeKnownLabel(ColumnMapExpectation):
    """Values are labels of a configured list, compared case-insensitively with ё = е.

    `value_set` holds the normalised keys (see `rules.label_key`).
    """

    value_set: list[str]
    map_metric = "column_values.crmwh_known_label"
    success_keys = ("value_set", "mostly")
    args_keys = ("column", "value_set")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["crm-warehouse"], "contributors": []}


def expectation_for(b: Bound, batch: Batch) -> Any:
    """The GX expectation of one bound rule; its meta carries the check name and severity."""
    r = b.rule
    common: dict[str, Any] = {
        "meta": {"check_name": r.name, "severity": r.severity, "description": r.description},
        "severity": "critical" if r.severity == BLOCKING else "warning",
    }
    mostly = {"mostly": r.mostly} if r.mostly is not None and r.mostly < 1.0 else {}
    E = gx.expectations
    if r.kind == "not_null":
        return E.ExpectColumnValuesToNotBeNull(column=r.column, **mostly, **common)
    if r.kind == "min":
        return E.ExpectColumnValuesToBeBetween(column=r.column, min_value=b.min_value, **common)
    if r.kind == "date_range":
        return E.ExpectColumnValuesToBeBetween(
            column=r.column, min_value=b.min_value, max_value=b.max_value, **mostly, **common
        )
    if r.kind == "inn":
        return ExpectColumnValuesToBeValidInn(column=r.column, **mostly, **common)
    if r.kind == "phone":
        return ExpectColumnValuesToBeE164Phone(column=r.column, **mostly, **common)
    if r.kind == "email":
        return ExpectColumnValuesToBeValidEmail(column=r.column, **mostly, **common)
    if r.kind == "known_values":
        return ExpectColumnValuesToBeKnownLabel(
            column=r.column, value_set=list(b.values), **mostly, **common
        )
    if r.kind == "unique":
        cols = list(r.columns)
        if all(q(c).startswith('"') for c in cols):
            if len(cols) == 1:
                return E.ExpectColumnValuesToBeUnique(column=cols[0], **common)
            return E.ExpectCompoundColumnsToBeUnique(column_list=cols, **common)
        key = ", ".join(q(c) for c in cols)
        keep = " or ".join(f"{q(c)} is not null" for c in cols)
        return E.UnexpectedRowsExpectation(
            unexpected_rows_query=(
                f"select * from (select *, count(*) over (partition by {key}) as _n "
                f"from {{batch}} where {keep}) where _n > 1"
            ),
            description=r.description,
            **common,
        )
    if r.kind == "volume":
        return E.ExpectTableRowCountToBeBetween(
            min_value=b.min_value, max_value=b.max_value, **common
        )
    if r.kind == "freshness":
        return E.ExpectColumnMaxToBeBetween(column=r.column, min_value=b.min_value, **common)
    if r.kind == "references":
        # GX substitutes `{batch}` with an aliased subquery: no alias of our own here.
        return E.UnexpectedRowsExpectation(
            unexpected_rows_query=f"select * from {{batch}} where {reference_violation(r)}",
            description=r.description,
            **common,
        )
    raise ValueError(f"unknown rule kind {r.kind}")


# --------------------------------------------------------------------------- validation

RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 5}


def _context(docs_dir: Path | None = None) -> Any:
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    if docs_dir is not None:
        from pipelines.lib.quality.docs import configure, drop_unmasked

        drop_unmasked(docs_dir)
        configure(config, docs_dir)
    return gx.get_context(mode="ephemeral", project_config=config)


def build_docs_index(docs_dir: Path) -> Path:
    """Rebuild the Data Docs index page under `docs_dir` from the kept validations."""
    from pipelines.lib.quality.docs import build_index

    return build_index(_context(docs_dir))


class GxChecks:
    """Runs suites with GX against one DuckDB connection (ephemeral context, SQL datasource)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        docs_dir: Path | None = None,
        run_name: str = "adhoc",
        build_index: bool = True,
    ) -> None:
        self.con = con
        self.docs_dir = docs_dir
        self.build_index = build_index  # false: the caller builds the index once (docs.py)
        self.run_name = run_name
        self.index: Path | None = None  # the Data Docs index page, once built
        self.context = _context(docs_dir)
        self.datasource = self.context.data_sources.add_sql(
            "duckdb",
            connection_string="duckdb:///:memory:",  # the dialect; rows come from `con`
            kwargs=engine_kwargs(con),
        )

    def validate(self, suite: Suite, batch: Batch, bounds: list[Bound]) -> list[Outcome]:
        view = batch.relation.strip('"')
        if any(a.name == suite.name for a in self.datasource.assets):
            self.datasource.delete_asset(suite.name)
        if suite.name in {s.name for s in self.context.suites.all()}:
            self.context.suites.delete(suite.name)
        asset = self.datasource.add_table_asset(name=suite.name, table_name=view)
        definition = asset.add_batch_definition_whole_table("latest_load")
        gx_suite = ExpectationSuite(
            name=suite.name,
            expectations=[expectation_for(b, batch) for b in bounds],
            meta={"layer": suite.layer, "table": suite.table, "load_id": batch.load_id},
        )
        gx_suite = self.context.suites.add(gx_suite)
        result = definition.get_batch().validate(gx_suite, result_format=RESULT_FORMAT)
        mask_results(result, suite)  # before the result is read, stored or rendered
        by_name = {b.rule.name: b for b in bounds}
        outcomes = [_outcome(r, by_name) for r in result.results]
        if self.docs_dir is not None:
            from pipelines.lib.quality.docs import store_and_build

            self.index = store_and_build(
                self.context,
                suite,
                result,
                batch.load_id or "model",
                self.run_name,
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
                build_index=self.build_index,
            )
        return outcomes

    def close(self) -> None:
        self.datasource.get_engine().dispose()
        self.datasource.get_execution_engine().engine.dispose()


def mask_results(result: Any, suite: Suite) -> None:
    """Mask, in place, the sampled values of `suite`'s sensitive columns in a GX suite
    validation result (samples of values, rows of a compound key, observed values), so the
    stored JSON and the Data Docs rendered from it never hold them in full.

    With `RESULT_FORMAT` (BASIC) GX returns no rows for `UnexpectedRowsExpectation`, only
    their count; samples of the other expectations are bounded by `partial_unexpected_count`.
    """
    if not suite.masks:
        return
    for r in result.results:
        if not r.result:
            continue
        kwargs = r.expectation_config.kwargs or {}
        kind = suite.masks.get(kwargs.get("column") or "")
        r.result = mask_sample(dict(r.result), kind, suite.masks, suite.column_types)


def _outcome(r: Any, by_name: dict[str, Bound]) -> Outcome:
    cfg = r.expectation_config
    b = by_name[cfg.meta["check_name"]]
    res = dict(r.result or {})
    exc = r.exception_info or {}
    errors = []
    if exc.get("raised_exception"):
        errors.append(str(exc.get("exception_message")))
    for v in exc.values():
        if isinstance(v, dict) and v.get("raised_exception"):
            errors.append(str(v.get("exception_message")))
    unexpected = res.get("unexpected_count")
    observed = res.get("observed_value")
    element_count = res.get("element_count")
    if cfg.type == "unexpected_rows_expectation":
        unexpected = observed
    elif cfg.type == "expect_table_row_count_to_be_between":
        element_count = observed
    elif observed is None and res.get("partial_unexpected_list"):
        observed = res["partial_unexpected_list"]
    details = "; ".join(e.splitlines()[0] for e in errors) or b.note
    return Outcome(
        rule=b.rule,
        passed=bool(r.success),
        expectation=cfg.type,
        element_count=element_count,
        unexpected_count=unexpected,
        unexpected_percent=res.get("unexpected_percent"),
        observed=observed,
        details=details,
    )
