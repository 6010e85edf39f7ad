"""Superset for the warehouse: install, configure, import the dashboards, serve.

Superset runs from its own virtual environment (``.venv-superset``, built from the pinned
``dashboards/server/requirements.lock`` by ``scripts/setup_superset.sh``) because its
dependency tree cannot share one environment with Dagster and dbt. This module drives it
from the outside, through its command line and HTTP, so the pipeline never imports
Superset.

Everything Superset writes lives under ``<state_dir>/superset``: the secret key, the
SQLite metadata database, the generated admin password and the server log. The
dashboards are code: YAML under ``dashboards/bundle`` with fixed UUIDs, zipped and
imported on every ``prepare`` so that git is the source of truth and re-imports update
in place. The warehouse is registered read-only with DuckDB's external access disabled,
so SQL Lab can neither write to it nor read files from the server's disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid as uuid_mod
import zipfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.lib.child_env import without_secrets
from pipelines.lib.dbt import ensure_manifest, public_marts
from pipelines.lib.masked import ensure_masked, masked_path
from pipelines.lib.settings import load_settings

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS_DIR = PROJECT_ROOT / "dashboards"
BUNDLE_DIR = DASHBOARDS_DIR / "bundle"
SERVER_DIR = DASHBOARDS_DIR / "server"
CONFIG_FILE = SERVER_DIR / "superset_config.py"
LOCK_FILE = SERVER_DIR / "requirements.lock"
IMPORT_SCRIPT = SERVER_DIR / "import_bundle.py"
SECURITY_SCRIPT = SERVER_DIR / "apply_security.py"
SECURITY_FILE = DASHBOARDS_DIR / "security.yaml"
SETUP_SCRIPT = PROJECT_ROOT / "scripts" / "setup_superset.sh"
LOCK_STAMP = ".crmwh-lock.sha256"

MART_SCHEMA = "marts"
#: The second registered database: the masked copy of the warehouse (``pipelines.lib.masked``)
MASKED_DATABASE_NAME = "CRM warehouse (masked)"

#: Passwords that ship in docs and tutorials; never accepted for the admin.
_WEAK_PASSWORDS = {"admin", "password", "changeme", "superset", "general"}
_SUPERSET_TIMEOUT = 600  # seconds for one `superset` CLI call (db upgrade on a slow disk)


class SupersetError(RuntimeError):
    """A Superset step failed; the message says which and shows the tail of its output."""


@dataclass(frozen=True)
class SupersetCredentials:
    """The admin login the CLI shows the user.

    ``generated`` is true when no ``SUPERSET_ADMIN_PASSWORD`` was given and the password
    was generated once and stored in ``password_file`` (mode 600); print it then, and
    point at the file rather than echoing an operator-chosen password.
    """

    username: str
    password: str = field(repr=False)
    generated: bool
    password_file: Path | None


def venv_dir() -> Path:
    """The Superset virtual environment (``CRMWH_SUPERSET_VENV`` overrides the default)."""
    return Path(os.environ.get("CRMWH_SUPERSET_VENV", PROJECT_ROOT / ".venv-superset"))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lock_hash() -> str:
    return _sha256(LOCK_FILE.read_bytes())


def _venv_current(venv: Path) -> bool:
    stamp = venv / LOCK_STAMP
    return (
        (venv / "bin" / "superset").exists()
        and stamp.exists()
        and stamp.read_text(encoding="utf-8").strip() == _lock_hash()
    )


def ensure_installed() -> Path:
    """Make sure ``.venv-superset`` matches the lock file; return the ``superset`` path.

    Runs ``scripts/setup_superset.sh`` only when the venv is missing or was built from a
    different lock (the script stores the lock's sha256 in the venv), so the common case
    costs a file read.
    """
    venv = venv_dir()
    if not _venv_current(venv):
        env = dict(os.environ, SUPERSET_VENV=str(venv))
        result = subprocess.run(
            ["bash", str(SETUP_SCRIPT)],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not _venv_current(venv):
            raise SupersetError(
                f"{SETUP_SCRIPT.name} failed (exit {result.returncode}):\n"
                f"{_tail(result.stdout + result.stderr)}"
            )
    return venv / "bin" / "superset"


# --------------------------------------------------------------------------- state


def superset_state_dir(state_dir: Path) -> Path:
    """Where Superset's own state lives inside the project state directory."""
    return Path(state_dir).resolve() / "superset"


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 600 (never world-readable, not even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _ensure_secret_key(sdir: Path) -> None:
    """Generate the Flask secret key once; Superset's config refuses to start without it.

    Kept across restarts because it signs sessions and encrypts stored DB credentials:
    a new key on every start would log everybody out and orphan those secrets.
    """
    key_file = sdir / "secret_key"
    if not key_file.exists() or not key_file.read_text(encoding="utf-8").strip():
        _write_private(key_file, secrets.token_urlsafe(48) + "\n")


def _superset_env(sdir: Path) -> dict[str, str]:
    """Environment for every Superset process: its config, its state, its own venv; no
    secrets (``child_env``: passwords reach Superset through stdin or private files)."""
    env = {
        k: v
        for k, v in without_secrets().items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "FLASK_APP", "SUPERSET_HOME"}
        and not k.startswith("SUPERSET__")
    }
    bin_dir = venv_dir() / "bin"
    env.update(
        SUPERSET_CONFIG_PATH=str(CONFIG_FILE),
        CRMWH_SUPERSET_STATE=str(sdir),
        SUPERSET_HOME=str(sdir),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    return env


def _metadata_key() -> str:
    """Which metadata database Superset uses: ``sqlite`` (default) or a file-safe id of
    the PostgreSQL database of the reports mode (``pipelines.lib.reports``)."""
    ident = os.environ.get("CRMWH_SUPERSET_METADATA_ID", "")
    return _sha256(ident.encode())[:16] if ident else "sqlite"


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run_superset(
    args: list[str], sdir: Path, *, stdin: str | None = None, what: str | None = None
) -> str:
    """Run a program of the Superset venv (``superset``, ``python``); raise on failure."""
    cmd = [str(venv_dir() / "bin" / args[0]), *args[1:]]
    result = subprocess.run(
        cmd,
        env=_superset_env(sdir),
        cwd=sdir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=_SUPERSET_TIMEOUT,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SupersetError(
            f"{what or ' '.join(args[:3])} failed (exit {result.returncode}):\n{_tail(output)}"
        )
    return output


def _admin_credentials(sdir: Path) -> SupersetCredentials:
    """The admin from ``SUPERSET_ADMIN_USERNAME``/``_PASSWORD``, else a generated one."""
    username = os.environ.get("SUPERSET_ADMIN_USERNAME", "").strip() or "admin"
    env_password = os.environ.get("SUPERSET_ADMIN_PASSWORD", "")
    if env_password:
        if len(env_password) < 8 or env_password.lower() in _WEAK_PASSWORDS:
            raise SupersetError(
                "SUPERSET_ADMIN_PASSWORD is too weak (at least 8 characters, not a default)"
            )
        return SupersetCredentials(username, env_password, generated=False, password_file=None)
    password_file = sdir / "admin_password"
    if password_file.exists() and password_file.read_text(encoding="utf-8").strip():
        password = password_file.read_text(encoding="utf-8").strip()
    else:
        password = secrets.token_urlsafe(18)
        _write_private(password_file, password + "\n")
    return SupersetCredentials(username, password, generated=True, password_file=password_file)


def _password_digest(username: str, password: str, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", f"{username}\0{password}".encode(), salt, 200_000).hex()


def _ensure_admin(sdir: Path, creds: SupersetCredentials) -> None:
    """Create the admin once; re-apply the password only when the chosen one changed.

    The password goes through stdin, not argv, so it never shows in ``ps``. A digest of
    the last applied password (never the password) is kept so a changed
    ``SUPERSET_ADMIN_PASSWORD`` takes effect without a reset on every start.
    """
    key = _metadata_key()
    applied_file = sdir / ("admin_password.applied" if key == "sqlite" else f"admin.{key}.applied")
    salt_hex, _, old_digest = (
        applied_file.read_text(encoding="utf-8").strip().partition(":")
        if applied_file.exists()
        else ("", "", "")
    )
    salt = bytes.fromhex(salt_hex) if salt_hex else secrets.token_bytes(16)
    digest = _password_digest(creds.username, creds.password, salt)
    if digest == old_digest:
        return
    twice = f"{creds.password}\n{creds.password}\n"
    out = _run_superset(
        [
            "superset",
            "fab",
            "create-admin",
            "--username",
            creds.username,
            "--firstname",
            "CRM",
            "--lastname",
            "Admin",
            "--email",
            f"{creds.username}@localhost",
        ],
        sdir,
        stdin=twice,
        what="superset fab create-admin",
    )
    if "already exists" in out:
        _run_superset(
            ["superset", "fab", "reset-password", "--username", creds.username],
            sdir,
            stdin=twice,
            what="superset fab reset-password",
        )
    elif "created" not in out:
        raise SupersetError(f"superset fab create-admin did not create the user:\n{_tail(out)}")
    _write_private(applied_file, f"{salt.hex()}:{digest}\n")


# --------------------------------------------------------------------------- bundle


def _load_yaml_files(root: Path) -> dict[str, Any]:
    """All YAML files of a bundle, keyed by path relative to the bundle root."""
    docs: dict[str, Any] = {}
    for path in sorted(root.rglob("*.y*ml")):
        rel = path.relative_to(root).as_posix()
        docs[rel] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return docs


def warehouse_uri(warehouse: Path) -> str:
    """SQLAlchemy URI of the warehouse: ``duckdb:///`` + the absolute path."""
    return f"duckdb:///{Path(warehouse).resolve()}"


#: DuckDB options forced on the registered warehouse whatever the YAML says: read-only
#: (the pipeline swaps in new builds; Superset must never write or lock it for writing)
#: and no external access (no read_csv('/etc/passwd'), ATTACH, INSTALL from SQL Lab).
READ_ONLY_CONNECT_ARGS: dict[str, Any] = {
    "read_only": True,
    "config": {"enable_external_access": False},
}


#: Where Superset serves the GX Data Docs, behind its login (``web_security.py``).
DEFAULT_DATA_DOCS_URL = "/crmwh/data-docs/"
#: Placeholder for that address in the dashboards' markdown (``dashboards.spec.model``).
DATA_DOCS_PLACEHOLDER = "__DATA_DOCS_URL__"


def build_bundle_zip(
    warehouse: Path,
    dest: Path,
    bundle_dir: Path = BUNDLE_DIR,
    *,
    data_docs_url: str = DEFAULT_DATA_DOCS_URL,
) -> Path:
    """Zip the YAML bundle for import, pointing its database at ``warehouse``.

    The committed YAML holds a placeholder URI, because the warehouse path differs per
    machine; here it becomes ``duckdb:///<absolute path>`` with read-only engine params.
    Likewise the Data Docs link of the dashboards becomes ``data_docs_url``.
    ``metadata.yaml`` is stamped ``type: assets`` for Superset's assets importer.
    """
    if not re.fullmatch(r"(https?://|/)[^\s()<>\[\]]*", data_docs_url):
        raise SupersetError(
            f"data docs URL {data_docs_url!r} is neither an http(s) address nor a path"
        )
    docs = _load_yaml_files(bundle_dir)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, doc in docs.items():
            if rel.startswith("databases/"):
                doc = dict(doc)
                masked = doc.get("database_name") == MASKED_DATABASE_NAME
                doc["sqlalchemy_uri"] = warehouse_uri(
                    masked_path(warehouse) if masked else warehouse
                )
                extra = dict(doc.get("extra") or {})
                engine_params = dict(extra.get("engine_params") or {})
                engine_params["connect_args"] = json.loads(json.dumps(READ_ONLY_CONNECT_ARGS))
                extra["engine_params"] = engine_params
                doc["extra"] = extra
                doc["allow_dml"] = False
                doc["allow_file_upload"] = False
            elif rel == "metadata.yaml":
                doc = {**doc, "type": "assets"}
            text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
            if rel.startswith("dashboards/"):
                text = text.replace(DATA_DOCS_PLACEHOLDER, data_docs_url)
            zf.writestr(f"crm_warehouse_bundle/{rel}", text)
    data = buf.getvalue()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


_SQL_TABLE_RE = re.compile(r"\b(?:from|join)\s+((?:\"?\w+\"?\.){0,2}\"?\w+\"?)", re.IGNORECASE)
_SQL_CTE_RE = re.compile(r"(?:\bwith|,)\s*(\w+)\s+as\s*\(", re.IGNORECASE)
_SQL_COMMENT_RE = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_SQL_STRING_RE = re.compile(r"'(?:[^']|'')*'")


def _virtual_tables(sql: str) -> list[str]:
    """Tables a virtual dataset's SQL reads (``from``/``join`` targets), unquoted.

    Names the SQL defines itself as common table expressions are not tables; comments
    and string literals are ignored so that neither hides nor invents a table.
    """
    text = _SQL_STRING_RE.sub("''", _SQL_COMMENT_RE.sub(" ", sql))
    ctes = {name.lower() for name in _SQL_CTE_RE.findall(text)}
    tables = [m.group(1).replace('"', "").lower() for m in _SQL_TABLE_RE.finditer(text)]
    return [t for t in tables if t not in ctes]


def dataset_tables(doc: Mapping[str, Any]) -> list[str]:
    """The mart tables (``marts.<name>``) a dataset YAML reads, physical or virtual."""
    if doc.get("sql"):
        return [t.rpartition(".")[2] for t in _virtual_tables(str(doc["sql"]))]
    return [str(doc.get("table_name", "")).lower()]


def _is_uuid(value: Any) -> bool:
    try:
        uuid_mod.UUID(str(value))
    except ValueError:
        return False
    return True


def _names(items: Any, key: str) -> set[str]:
    return {str(i.get(key)) for i in items or [] if isinstance(i, Mapping)}


def _chart_refs(params: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Saved metrics and plain columns a chart's params refer to by name."""
    metrics: list[str] = []
    for key in ("metric", "metrics", "percent_metrics", "timeseries_limit_metric"):
        value = params.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item:
                metrics.append(item)
    columns: list[str] = []
    for key in ("groupby", "columns", "all_columns", "x_axis"):
        value = params.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item:
                columns.append(item)
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


@dataclass(frozen=True)
class UserSpec:
    """One Superset user for ``ensure_users``: ``roles`` are names from ``security.yaml``
    (or ``Admin``); ``manager_id`` gives the user that manager's rows."""

    username: str
    password: str = field(repr=False)
    roles: tuple[str, ...]
    email: str | None = None
    manager_id: str | None = None


def ensure_users(state_dir: Path, users: Iterable[UserSpec]) -> None:
    """Create or update many Superset users in one Superset process.

    Starting Superset's Python costs seconds, a user milliseconds, so callers with several
    users pass them together. Every password is checked here and every entry (roles,
    duplicates) inside Superset before the first user is applied. The passwords go
    through stdin as JSON, never on the command line. Run ``prepare`` first (the roles
    must exist).
    """
    users = list(users)
    names = [u.username for u in users]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SupersetError(f"users listed twice: {', '.join(twice)}")
    for user in users:
        if len(user.password) < 8 or user.password.lower() in _WEAK_PASSWORDS:
            raise SupersetError(f"password for {user.username} is too weak")
    if not users:
        return
    payload = [
        {
            "username": u.username,
            "email": u.email or f"{u.username}@localhost",
            "roles": list(u.roles),
            "manager_id": u.manager_id or None,
            "password": u.password,
        }
        for u in users
    ]
    what = f"create user {names[0]}" if len(names) == 1 else f"create {len(names)} users"
    _run_superset(
        ["python", str(SECURITY_SCRIPT), "add-users", str(SECURITY_FILE)],
        superset_state_dir(state_dir),
        stdin=json.dumps(payload),
        what=what,
    )


def ensure_user(
    state_dir: Path,
    username: str,
    password: str,
    roles: Collection[str],
    *,
    email: str | None = None,
    manager_id: str | None = None,
) -> None:
    """Create or update a Superset user with ``roles`` (names from ``security.yaml``).

    With ``manager_id`` the user also gets a personal role whose Row Level Security
    filter shows them that manager's rows (deals, customers, calls, invoices); without
    one, a Manager sees no rows at all. The password goes through stdin. Run ``prepare``
    first (the roles must exist). For several users, ``ensure_users`` is one process.
    """
    ensure_users(
        state_dir, [UserSpec(username, password, tuple(roles), email=email, manager_id=manager_id)]
    )


def list_users(state_dir: Path) -> list[dict[str, Any]]:
    """Superset's users: ``username``, ``email``, ``active``, ``roles`` (of
    ``security.yaml``), ``manager_id`` (from the personal role) and ``last_login``."""
    sdir = superset_state_dir(state_dir)
    out = _run_superset(
        ["python", str(SECURITY_SCRIPT), "users", str(SECURITY_FILE)], sdir, what="list users"
    )
    for line in reversed(out.splitlines()):  # Superset may log before the JSON line
        if line.startswith("["):
            return json.loads(line)
    raise SupersetError(f"list users printed no list:\n{_tail(out)}")


def remove_user(state_dir: Path, username: str) -> None:
    """Delete a Superset user (never the last active Admin) and, when no other user
    holds it, the personal manager role with its Row Level Security filter."""
    sdir = superset_state_dir(state_dir)
    _run_superset(
        ["python", str(SECURITY_SCRIPT), "remove", str(SECURITY_FILE), username],
        sdir,
        what=f"remove user {username}",
    )


# --------------------------------------------------------------------------- prepare


def _bundle_hash(bundle_dir: Path = BUNDLE_DIR) -> str:
    h = hashlib.sha256()
    for path in sorted(bundle_dir.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(bundle_dir).as_posix().encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


def _stamp(
    warehouse: Path, username: str, data_docs_url: str = DEFAULT_DATA_DOCS_URL
) -> dict[str, str]:
    """What a prepared state depends on; a change to any of it means prepare again."""
    return {
        "lock": _lock_hash(),
        "config": _sha256(
            CONFIG_FILE.read_bytes()
            + IMPORT_SCRIPT.read_bytes()
            + SECURITY_SCRIPT.read_bytes()
            + SECURITY_FILE.read_bytes()
        ),
        "bundle": _bundle_hash(),
        "warehouse": warehouse_uri(warehouse),
        "admin": username,
        "data_docs": data_docs_url,
        "metadata": _metadata_key(),
    }


def _read_stamp(sdir: Path) -> dict[str, str]:
    try:
        return json.loads((sdir / "prepared.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def prepare(
    warehouse: Path, state_dir: Path, *, data_docs_url: str = DEFAULT_DATA_DOCS_URL
) -> SupersetCredentials:
    """Get Superset ready to serve ``warehouse``: metadata DB, admin, database, dashboards.

    Idempotent, so the CLI calls it before every start: migrations and ``superset init``
    run only when the state is new or the installed Superset changed; the admin is
    created once; the bundle is re-imported every time (it updates by UUID, never
    duplicates), after ``validate_bundle`` so a broken bundle fails before touching the
    metadata; then the roles and Row Level Security of ``dashboards/security.yaml`` are
    (re)applied. Returns the admin credentials for the CLI to show.
    """
    warehouse = Path(warehouse).resolve()
    if not warehouse.exists():
        raise FileNotFoundError(f"{warehouse} does not exist: build the warehouse first")
    ensure_masked(warehouse)
    problems = validate_bundle(BUNDLE_DIR) + validate_security(SECURITY_FILE, BUNDLE_DIR)
    if problems:
        raise SupersetError("dashboards bundle is invalid:\n  " + "\n  ".join(problems))
    ensure_installed()
    sdir = superset_state_dir(state_dir)
    sdir.mkdir(parents=True, exist_ok=True)
    os.chmod(sdir, 0o700)
    _ensure_secret_key(sdir)
    creds = _admin_credentials(sdir)

    old = _read_stamp(sdir)
    metadata = _metadata_key()
    if (
        old.get("lock") != _lock_hash()
        or old.get("metadata", "sqlite") != metadata
        or (metadata == "sqlite" and not (sdir / "superset.db").exists())
    ):
        _run_superset(["superset", "db", "upgrade"], sdir, what="superset db upgrade")
        _run_superset(["superset", "init"], sdir, what="superset init")
    _ensure_admin(sdir, creds)

    zip_path = build_bundle_zip(warehouse, sdir / "bundle.zip", data_docs_url=data_docs_url)
    # one Superset process for both (loading Superset costs seconds)
    _run_superset(
        ["python", str(IMPORT_SCRIPT), str(zip_path), creds.username, str(SECURITY_FILE)],
        sdir,
        what="dashboards bundle import, roles and row level security",
    )
    stamp = _stamp(warehouse, creds.username, data_docs_url)
    _write_private(sdir / "prepared.json", json.dumps(stamp) + "\n")
    return creds


# --------------------------------------------------------------------------- serve


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_healthy(base_url: str, proc: subprocess.Popen | None = None, timeout: float = 120) -> None:
    """Poll ``<base_url>/health`` until it answers OK; fail early if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SupersetError(f"Superset exited with code {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise SupersetError(f"Superset did not answer {base_url}/health within {timeout:.0f}s")


def start(
    warehouse: Path,
    state_dir: Path,
    port: int = 8088,
    *,
    threads: int = 4,
    data_docs_url: str = DEFAULT_DATA_DOCS_URL,
    data_docs_dir: Path | None = None,
) -> subprocess.Popen:
    """Start the Superset web server on 127.0.0.1:``port``; return once ``/health`` is OK.

    Gunicorn (one worker, ``threads`` threads) rather than ``superset run``, which is
    Flask's development server. Concurrent chart queries do not share a DuckDB
    connection: Superset opens analytics engines with a NullPool, so every query opens and
    closes its own read-only connection, which also lets a newly swapped-in warehouse
    file be seen without a restart. Runs ``prepare`` first when the state was prepared for
    another warehouse, bundle or Superset build. The process leads its own session:
    ``stop`` (or ``os.killpg``) ends the whole group. ``data_docs_dir``: the GX Data Docs
    site it serves at ``/crmwh/data-docs/`` to the roles that may read it. Its
    environment holds no secret (``_superset_env``).
    """
    warehouse = Path(warehouse).resolve()
    sdir = superset_state_dir(state_dir)
    creds_user = os.environ.get("SUPERSET_ADMIN_USERNAME", "").strip() or "admin"
    stamp = _stamp(warehouse, creds_user, data_docs_url)
    if _read_stamp(sdir) != stamp or not _venv_current(venv_dir()):
        prepare(warehouse, state_dir, data_docs_url=data_docs_url)
    ensure_masked(warehouse)
    if not _port_free(port):
        raise SupersetError(f"port {port} on 127.0.0.1 is already in use")
    log_path = sdir / "server.log"
    env = _superset_env(sdir)
    if data_docs_dir is not None:
        env["CRMWH_DATA_DOCS_DIR"] = str(Path(data_docs_dir).resolve())
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                str(venv_dir() / "bin" / "gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--worker-class",
                "gthread",
                "--threads",
                str(threads),
                "--timeout",
                "120",
                "--graceful-timeout",
                "10",
                "--limit-request-line",
                "0",
                "--limit-request-field_size",
                "0",
                "superset.app:create_app()",
            ],
            env=env,
            cwd=sdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    except SupersetError as exc:
        stop(proc)
        raise SupersetError(
            f"{exc}; log {log_path}:\n{_tail(log_path.read_text('utf-8', 'replace'))}"
        ) from None
    return proc


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a server from ``start``: SIGTERM to its process group, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=timeout)
