"""Checks of the dashboards before they are imported: `validate_bundle` (every UUID chain from
dashboard to chart, dataset and database resolves; datasets read only the public marts),
`check_bundle_against_warehouse` (every dataset's columns and metrics compile against a real
warehouse, without reading rows) and `validate_security` (``dashboards/security.yaml``: manager
row level security on every dataset with ``manager_id``, raw contacts only in contacts datasets
granted to contacts roles, roles naming only datasets and dashboards that exist).
"""

from __future__ import annotations

import json
import uuid as uuid_mod
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipelines.lib.dbt import ensure_manifest, public_marts
from pipelines.lib.settings import load_settings
from pipelines.lib.superset.bundle import (
    MART_SCHEMA,
    _load_yaml_files,
    _virtual_tables,
    dataset_tables,
)
from pipelines.lib.superset.layout import BUNDLE_DIR, SECURITY_FILE


def _is_uuid(value: Any) -> bool:
    try:
        uuid_mod.UUID(str(value))
    except ValueError:
        return False
    return True


def _names(items: Any, key: str) -> set[str]:
    return {str(i.get(key)) for i in items or [] if isinstance(i, Mapping)}


def _named(params: Mapping[str, Any], keys: tuple[str, ...]) -> list[str]:
    """The names (plain strings, alone or in a list) under `keys` of a chart's params;
    ad-hoc metrics and columns (objects) are not names."""
    names: list[str] = []
    for key in keys:
        value = params.get(key)
        names += [
            i for i in (value if isinstance(value, list) else [value]) if isinstance(i, str) and i
        ]
    return names


def _chart_refs(params: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Saved metrics and plain columns a chart's params refer to by name."""
    metrics = _named(params, ("metric", "metrics", "percent_metrics", "timeseries_limit_metric"))
    columns = _named(params, ("groupby", "columns", "all_columns", "x_axis"))
    for item in params.get("order_by_cols") or []:
        try:
            columns.append(str(json.loads(item)[0]))
        except (TypeError, ValueError, IndexError):
            columns.append(str(item))
    for flt in params.get("adhoc_filters") or []:
        if isinstance(flt, Mapping) and flt.get("expressionType") == "SIMPLE":
            columns.append(str(flt.get("subject")))
    return metrics, columns


def _query_context_refs(qc: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Saved metrics and plain columns the saved query context's queries name."""
    metrics: list[str] = []
    columns: list[str] = []
    for query in qc.get("queries") or []:
        for m in query.get("metrics") or []:
            if isinstance(m, str):
                metrics.append(m)
        for c in query.get("columns") or []:
            if isinstance(c, str):
                columns.append(c)
            elif isinstance(c, Mapping) and c.get("columnType") == "BASE_AXIS":
                columns.append(str(c.get("sqlExpression")))
        for f in query.get("filters") or []:
            if isinstance(f, Mapping) and isinstance(f.get("col"), str):
                columns.append(f["col"])
        for item in query.get("orderby") or []:
            if isinstance(item, list) and item and isinstance(item[0], str):
                (metrics if item[0] not in columns else columns).append(item[0])
    return metrics, columns


def _check_position(rel: str, position: Mapping[str, Any]) -> list[str]:
    """The layout tree: every child exists and names its parent, every chart is reachable."""
    problems: list[str] = []
    nodes = {k: v for k, v in position.items() if isinstance(v, Mapping)}
    if "ROOT_ID" not in nodes or "GRID_ID" not in nodes:
        return [f"{rel}: position has no ROOT_ID/GRID_ID"]
    reachable: set[str] = set()
    stack = ["ROOT_ID"]
    while stack:
        key = stack.pop()
        if key in reachable:
            continue
        reachable.add(key)
        for child in nodes[key].get("children") or []:
            if child not in nodes:
                problems.append(f"{rel}: position {key} has unknown child {child}")
                continue
            if key not in (nodes[child].get("parents") or [key]):
                problems.append(f"{rel}: position {child} does not name its parent {key}")
            stack.append(child)
    for key, node in nodes.items():
        if node.get("type") == "CHART" and key not in reachable:
            problems.append(f"{rel}: position {key} is not in the layout tree")
    return problems


def validate_bundle(
    path: Path = BUNDLE_DIR, allowed_tables: Collection[str] | None = None
) -> list[str]:
    """Problems in a dashboards bundle, as readable strings (empty list: valid).

    Superset's importer follows UUID chains (dashboard position -> chart -> dataset ->
    database) and silently skips a link that points nowhere, so a typo shows up as a
    missing chart in production. This catches those before import, plus datasets built
    on anything but the mart tables in ``allowed_tables`` (default: the public marts of
    the dbt project, so a dashboard never depends on staging internals), charts whose
    params or saved query name metrics or columns their dataset does not define, broken
    layout trees, and native filters whose targets or scopes point at nothing.
    """
    if allowed_tables is None:
        allowed_tables = public_marts(ensure_manifest(load_settings()))  # the shipped project
    root = Path(path)
    problems: list[str] = []
    try:
        docs = _load_yaml_files(root)
    except yaml.YAMLError as exc:
        return [f"invalid YAML: {exc}"]
    if "metadata.yaml" not in docs:
        problems.append("metadata.yaml: missing")
    elif not isinstance(docs["metadata.yaml"], Mapping) or "version" not in docs["metadata.yaml"]:
        problems.append("metadata.yaml: no version")
    allowed = {t.lower() for t in allowed_tables}

    kinds: dict[str, dict[str, tuple[str, Mapping[str, Any]]]] = {
        "databases": {},
        "datasets": {},
        "charts": {},
        "dashboards": {},
    }
    seen: dict[str, str] = {}
    for rel, doc in docs.items():
        kind = rel.split("/", 1)[0]
        if kind not in kinds:
            continue
        if not isinstance(doc, Mapping):
            problems.append(f"{rel}: not a mapping")
            continue
        uid = str(doc.get("uuid", ""))
        if not _is_uuid(uid):
            problems.append(f"{rel}: missing or invalid uuid {uid!r}")
            continue
        if uid in seen:
            problems.append(f"{rel}: uuid {uid} already used by {seen[uid]}")
        seen[uid] = rel
        kinds[kind][uid] = (rel, doc)

    for rel, doc in kinds["databases"].values():
        if not str(doc.get("sqlalchemy_uri", "")).startswith("duckdb:///"):
            problems.append(f"{rel}: sqlalchemy_uri is not a duckdb:/// URI")

    names: dict[str, str] = {}
    for rel, doc in kinds["datasets"].values():
        if doc.get("database_uuid") not in kinds["databases"]:
            problems.append(f"{rel}: database_uuid {doc.get('database_uuid')} not in bundle")
        if str(doc.get("schema") or "").lower() != MART_SCHEMA:
            problems.append(f"{rel}: schema {doc.get('schema')!r} is not {MART_SCHEMA!r}")
        name = str(doc.get("table_name", ""))
        if name in names:
            problems.append(f"{rel}: table_name {name!r} already used by {names[name]}")
        names[name] = rel
        sql = doc.get("sql")
        if sql:
            tables = _virtual_tables(str(sql))
            if not tables:
                problems.append(f"{rel}: virtual dataset SQL reads no table")
            for table in tables:
                schema, _, tname = table.rpartition(".")
                if schema.split(".")[-1] != MART_SCHEMA or tname not in allowed:
                    problems.append(f"{rel}: SQL reads {table}, not an allowed mart table")
        elif name.lower() not in allowed:
            problems.append(f"{rel}: table {doc.get('table_name')!r} is not an allowed mart table")
        cols = [str(c.get("column_name")) for c in doc.get("columns") or []]
        if len(cols) != len(set(cols)):
            problems.append(f"{rel}: duplicate column names")
        main = doc.get("main_dttm_col")
        if main and not any(
            c.get("column_name") == main and c.get("is_dttm") for c in doc.get("columns") or []
        ):
            problems.append(f"{rel}: main_dttm_col {main!r} is not a temporal column")

    for rel, doc in kinds["charts"].values():
        ds_uuid = doc.get("dataset_uuid")
        if ds_uuid not in kinds["datasets"]:
            problems.append(f"{rel}: dataset_uuid {ds_uuid} not in bundle")
            continue
        ds = kinds["datasets"][ds_uuid][1]
        known_metrics = _names(ds.get("metrics"), "metric_name")
        known_columns = _names(ds.get("columns"), "column_name")
        metrics, columns = _chart_refs(doc.get("params") or {})
        qc = doc.get("query_context")
        if qc is None:
            problems.append(f"{rel}: no query_context (the chart data API needs one)")
        else:
            try:
                qm, qcols = _query_context_refs(json.loads(qc))
                metrics += qm
                columns += qcols
            except (TypeError, ValueError) as exc:
                problems.append(f"{rel}: query_context is not JSON ({exc})")
        problems += [
            f"{rel}: metric {m!r} not defined in its dataset"
            for m in dict.fromkeys(metrics)
            if m not in known_metrics and m not in known_columns
        ]
        problems += [
            f"{rel}: column {c!r} not in its dataset"
            for c in dict.fromkeys(columns)
            if c not in known_columns
        ]

    on_dashboard: set[str] = set()
    for rel, doc in kinds["dashboards"].values():
        position = doc.get("position") or {}
        problems += _check_position(rel, position)
        chart_ids: dict[int, str] = {}
        for key, node in position.items():
            if not (isinstance(node, Mapping) and node.get("type") == "CHART"):
                continue
            meta = node.get("meta") or {}
            chart_uuid = meta.get("uuid")
            if chart_uuid not in kinds["charts"]:
                problems.append(f"{rel}: position {key} refers to unknown chart {chart_uuid}")
            chart_id = meta.get("chartId")
            if not isinstance(chart_id, int):
                problems.append(f"{rel}: position {key} has no integer chartId")
            elif chart_ids.get(chart_id, chart_uuid) != chart_uuid:
                problems.append(f"{rel}: chartId {chart_id} used for two charts")
            else:
                chart_ids[chart_id] = str(chart_uuid)
            on_dashboard.add(str(chart_uuid))
        if not chart_ids:
            problems.append(f"{rel}: dashboard has no chart")
        metadata = doc.get("metadata") or {}
        for flt in metadata.get("native_filter_configuration") or []:
            label = f"{rel}: filter {flt.get('name')!r}"
            scope = flt.get("scope") or {}
            for chart_id in [*(scope.get("excluded") or []), *(flt.get("chartsInScope") or [])]:
                if chart_id not in chart_ids:
                    problems.append(f"{label} scope names chartId {chart_id}, not on the dashboard")
            for target in flt.get("targets") or []:
                ds_uuid = target.get("datasetUuid")
                if ds_uuid is None:
                    if flt.get("filterType") != "filter_time":
                        problems.append(f"{label} has no target dataset")
                    continue
                if ds_uuid not in kinds["datasets"]:
                    problems.append(f"{label} targets unknown {ds_uuid}")
                    continue
                column = (target.get("column") or {}).get("name")
                ds_cols = _names(kinds["datasets"][ds_uuid][1].get("columns"), "column_name")
                if column and column not in ds_cols:
                    problems.append(f"{label} column {column!r} unknown")
    for uid, (rel, _doc) in kinds["charts"].items():
        if uid not in on_dashboard:
            problems.append(f"{rel}: chart is on no dashboard")
    return problems


def check_bundle_against_warehouse(
    warehouse: Path, path: Path = BUNDLE_DIR
) -> tuple[list[str], dict[str, list[str]]]:
    """Compile every dataset of the bundle against a real warehouse, without reading rows.

    For each dataset, selects every declared column (calculated ones by their expression)
    and every metric from the dataset's table or SQL with ``limit 0``, so a column a mart
    renamed, a typo in a metric or a virtual dataset that no longer compiles is reported
    by name here rather than as a red chart. Returns ``(problems, missing)``: ``missing``
    maps a dataset file to the mart tables it reads that the warehouse does not have
    (yet), which is not the bundle's fault; those datasets are not compiled.
    """
    import duckdb

    docs = _load_yaml_files(Path(path))
    problems: list[str] = []
    missing: dict[str, list[str]] = {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        present = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [MART_SCHEMA],
            ).fetchall()
        }
        for rel, doc in docs.items():
            if not rel.startswith("datasets/") or not isinstance(doc, Mapping):
                continue
            absent = sorted(set(dataset_tables(doc)) - present)
            if absent:
                missing[rel] = absent
                continue
            source = (
                f"({doc['sql']}) as ds" if doc.get("sql") else f"{MART_SCHEMA}.{doc['table_name']}"
            )
            exprs = [
                (f"column {c['column_name']}", c.get("expression") or f'"{c["column_name"]}"')
                for c in doc.get("columns") or []
            ] + [(f"metric {m['metric_name']}", m["expression"]) for m in doc.get("metrics") or []]
            for what, expr in exprs:
                try:
                    con.execute(f"select {expr} from {source} limit 0")
                except duckdb.Error as exc:
                    first = str(exc).strip().splitlines()[0]
                    problems.append(f"{rel}: {what}: {first}")
    finally:
        con.close()
    return problems, missing


#: Column names that hold customers' raw contacts; a dataset exposing one must be listed
#: in ``contacts_datasets`` of ``dashboards/security.yaml``.
CONTACT_COLUMNS: frozenset[str] = frozenset(
    {"primary_phone", "primary_email", "caller_e164", "callee_e164", "phone", "email"}
)


def validate_security(spec_path: Path = SECURITY_FILE, bundle_dir: Path = BUNDLE_DIR) -> list[str]:
    """Problems in ``dashboards/security.yaml`` measured against the bundle (empty: valid).

    The rules that keep access deny-by-default as the bundle grows: every dataset with a
    ``manager_id`` column is under the manager Row Level Security scope; every dataset
    with a raw contact column is a contacts dataset, and only roles marked ``contacts``
    are granted one; roles name only datasets and dashboards that exist.
    """
    try:
        spec = yaml.safe_load(Path(spec_path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return [f"{spec_path}: {exc}"]
    docs = _load_yaml_files(Path(bundle_dir))
    datasets = {
        str(d.get("table_name")): d
        for rel, d in docs.items()
        if rel.startswith("datasets/") and isinstance(d, Mapping)
    }
    slugs = {
        str(d.get("slug"))
        for rel, d in docs.items()
        if rel.startswith("dashboards/") and isinstance(d, Mapping)
    }
    database_names = {
        str(d.get("database_name"))
        for rel, d in docs.items()
        if rel.startswith("databases/") and isinstance(d, Mapping)
    }
    problems: list[str] = []
    name = Path(spec_path).name
    scope = spec.get("manager_scope") or {}
    column = scope.get("column", "manager_id")
    scoped = set(scope.get("datasets") or [])
    contacts = set(spec.get("contacts_datasets") or [])
    for table, doc in datasets.items():
        cols = _names(doc.get("columns"), "column_name")
        if column in cols and table not in scoped:
            problems.append(f"{name}: dataset {table} has {column} but no Row Level Security")
        if cols & CONTACT_COLUMNS and table not in contacts:
            problems.append(
                f"{name}: dataset {table} exposes {sorted(cols & CONTACT_COLUMNS)} "
                "but is not a contacts dataset"
            )
    for table in scoped:
        if table not in datasets:
            problems.append(f"{name}: manager_scope dataset {table} is not in the bundle")
        elif column not in _names(datasets[table].get("columns"), "column_name"):
            problems.append(f"{name}: manager_scope dataset {table} has no {column} column")
    for table in contacts - set(datasets):
        problems.append(f"{name}: contacts dataset {table} is not in the bundle")
    roles = spec.get("roles") or {}
    sets = spec.get("permission_sets") or {}
    for role, rdef in roles.items():
        for pset in rdef.get("permissions") or []:
            if pset not in sets:
                problems.append(f"{name}: role {role}: unknown permission set {pset!r}")
        grants = rdef.get("datasets")
        if grants != "all":
            for table in grants or []:
                if table not in datasets:
                    problems.append(f"{name}: role {role}: unknown dataset {table}")
                elif table in contacts and not rdef.get("contacts"):
                    problems.append(f"{name}: role {role} may not see contacts ({table})")
        for db_name in rdef.get("databases") or []:
            if db_name not in database_names:
                problems.append(f"{name}: role {role}: unknown database {db_name!r}")
        if rdef.get("dashboards") != "all":
            for slug_ in rdef.get("dashboards") or []:
                if slug_ not in slugs:
                    problems.append(f"{name}: role {role}: unknown dashboard {slug_}")
    for role in scope.get("exempt_roles") or []:
        if role != "Admin" and role not in roles:
            problems.append(f"{name}: exempt role {role} is not defined")
    return problems
