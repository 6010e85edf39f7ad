"""Data-quality asset checks: the GX suites of `pipelines.lib.quality`, one Dagster
asset check per rule, each with its severity.

Raw tables: one op per table checks the latest load after the ingest asset; its blocking
checks gate the dbt build, so a bad load never reaches the warehouse being built. Staging
models: one op per model checks the warehouse being built (read-only) after dbt, and its
blocking checks gate the publish step, so the served warehouse is left unchanged. Warnings
are reported (Dagster severity WARN) and never gate anything.

Every outcome is also written to `<data>/checks/` (read as `raw.check_results`, feeding
`marts.mart_data_quality`), and the GX Data Docs site under `<data>/data_docs/` is updated
(its index page once at the end of a `crmwh run`, see `pipelines.lib.quality.docs`).
Great Expectations is imported only when a check runs (its import alone takes seconds).
"""

from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    multi_asset_check,
)

from pipelines.lib.config_folder import table_path
from pipelines.lib.mappings import load_entities
from pipelines.lib.quality.rules import (
    RAW,
    Suite,
    load_config,
    pipeline_stages,
    raw_suites,
    staging_suites,
)
from pipelines.lib.settings import Settings


def _metadata(outcome: object) -> dict[str, object]:
    from pipelines.lib.quality.results import outcome_record

    record = outcome_record(outcome)
    del record["passed"]  # the check result itself says it
    meta = {"severity": outcome.rule.severity, **record, "mostly": outcome.rule.mostly}
    return {k: v for k, v in meta.items() if v is not None}


def _run(
    context: AssetCheckExecutionContext, settings: Settings, suite: Suite, key: AssetKey
) -> Iterator[object]:
    from pipelines.lib.dbt import build_path
    from pipelines.lib.quality import (
        DOCS_INDEX_TAG,
        LazyChecker,
        data_docs_enabled,
        docs_dir,
        run_suite,
        utcnow,
    )
    from pipelines.lib.quality.duck import raw_connection, warehouse_connection
    from pipelines.lib.quality.memo import REUSED, memo_path
    from pipelines.lib.quality.results import write_results

    s = settings
    now = utcnow()
    if suite.layer == RAW:
        con = raw_connection(s.data_dir, load_entities(s.sources_dir, s.config_dir), s)
    else:
        built = build_path(s)
        con = warehouse_connection(built if built.exists() else s.warehouse_path, s)
    try:
        docs = docs_dir(s.data_dir) if data_docs_enabled(s.section("quality")) else None
        index = context.run.tags.get(DOCS_INDEX_TAG) != "end-of-run"

        def gx_checker() -> object:  # GX is imported only when a rule is evaluated
            from pipelines.lib.quality.gx import GxChecks

            return GxChecks(con, docs_dir=docs, run_name=context.run.run_id, build_index=index)

        checker = LazyChecker(gx_checker)
        # raw: a load checked by an earlier run keeps its outcomes (pipelines.lib.quality.memo)
        memo = memo_path(s.data_dir, suite) if suite.layer == RAW else None
        try:
            batch, outcomes = run_suite(
                con, suite, checker=checker, now=now, memo_file=memo, run_id=context.run.run_id
            )
        finally:
            checker.close()
    finally:
        con.close()
    reused = sum(REUSED in (o.details or "") for o in outcomes)
    path = write_results(s.data_dir, suite, batch, outcomes, context.run.run_id, now)
    failed = [o for o in outcomes if not o.passed]
    context.log.info(
        f"{suite.name} (load {batch.load_id or '-'}): {len(outcomes) - len(failed)} passed, "
        f"{len(failed)} failed ({reused} reused from the run that checked this load); "
        f"results in {path}"
    )
    selected = context.selected_asset_check_keys
    for o in outcomes:
        if not o.passed:
            log = context.log.error if o.rule.blocking else context.log.warning
            log(f"{o.rule.severity} {suite.name}:{o.rule.name} failed: {o.rule.description}")
        check_key = next(spec.key for spec in context.check_specs if spec.name == o.rule.name)
        if check_key not in selected:
            continue
        yield AssetCheckResult(
            asset_key=key,
            check_name=o.rule.name,
            passed=o.passed,
            severity=AssetCheckSeverity.ERROR if o.rule.blocking else AssetCheckSeverity.WARN,
            description=o.rule.description,
            metadata=_metadata(o),
        )


def build_checks(settings: Settings, suite: Suite, key: AssetKey) -> AssetChecksDefinition:
    """One op that runs a table's suite and reports each rule as an asset check."""
    specs = [
        AssetCheckSpec(
            r.name,
            asset=key,
            blocking=r.blocking,
            description=f"[{r.severity}] {r.description}",
            metadata={"severity": r.severity, "kind": r.kind},
        )
        for r in suite.rules
    ]

    @multi_asset_check(
        specs=specs,
        name=f"quality__{suite.layer}__{suite.table}",
        description=f"Great Expectations suite `{suite.name}` ({len(specs)} checks).",
        can_subset=True,
    )
    def _checks(context: AssetCheckExecutionContext) -> Iterator[object]:
        yield from _run(context, settings, suite, key)

    return _checks


def quality_checks(
    settings: Settings, staging_keys: set[AssetKey] | None = None
) -> list[AssetChecksDefinition]:
    """Checks of every raw table and of the configured staging models among `staging_keys`."""
    s = settings
    config = load_config(s.quality_file)
    stages = pipeline_stages(table_path(s, "pipeline_stages"))
    out = [
        build_checks(s, suite, AssetKey(["raw", suite.table]))
        for suite in raw_suites(load_entities(s.sources_dir, s.config_dir), config, stages)
    ]
    # the staging suites read the DuckDB build; on the Thrift engine dbt's data tests stand
    if staging_keys and s.dbt_engine == "duckdb":
        models = {k.path[-1] for k in staging_keys if k.path[0] == "staging"}
        for suite in staging_suites(config, models):
            out.append(build_checks(s, suite, AssetKey(["staging", suite.table])))
    return out
