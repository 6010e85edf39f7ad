"""Preparing and serving Superset: `prepare` validates the bundle and the security spec, runs
the metadata migrations when the state is new or Superset changed, ensures the admin, imports the
bundle and applies roles and row level security, then writes a stamp; `start` prepares again when
that stamp is stale, launches the web server (gunicorn) on 127.0.0.1 and waits until ``/health``
answers; `stop` ends its process group. `server_command` and `server_env` are the web server's
command line and environment, shared with the process list of `crmwh serve`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from dashboards.server.formats import DEFAULT_CURRENCY, DEFAULT_LANGUAGE
from dashboards.spec.i18n import CATALOGUE_DIR
from pipelines.lib.masked import ensure_masked, masked_path
from pipelines.lib.superset.bundle import (
    DEFAULT_DATA_DOCS_URL,
    _bundle_hash,
    build_bundle_zip,
    warehouse_uri,
)
from pipelines.lib.superset.install import (
    _ensure_secret_key,
    _lock_hash,
    _metadata_key,
    _run_superset,
    _sha256,
    _superset_env,
    _tail,
    _venv_current,
    _write_private,
    ensure_installed,
    superset_state_dir,
    venv_dir,
)
from pipelines.lib.superset.layout import (
    BUNDLE_DIR,
    CONFIG_FILE,
    IMPORT_SCRIPT,
    SECURITY_FILE,
    SECURITY_SCRIPT,
    SERVER_DIR,
    SupersetError,
)
from pipelines.lib.superset.users import SupersetCredentials, _admin_credentials, _ensure_admin
from pipelines.lib.superset.validation import validate_bundle, validate_security

#: the served warehouse files, read by dashboards/server/published_cache.py (Superset's venv)
SERVED_FILES_ENV = "CRMWH_SERVED_FILES"


def _stamp(
    warehouse: Path,
    username: str,
    data_docs_url: str = DEFAULT_DATA_DOCS_URL,
    language: str = DEFAULT_LANGUAGE,
    currency: str = DEFAULT_CURRENCY,
    spark_uri: str | None = None,
) -> dict[str, str]:
    """What a prepared state depends on; a change to any of it means prepare again."""
    return {
        "lock": _lock_hash(),
        "config": _sha256(
            CONFIG_FILE.read_bytes()
            + (SERVER_DIR / "formats.py").read_bytes()
            + IMPORT_SCRIPT.read_bytes()
            + SECURITY_SCRIPT.read_bytes()
            + SECURITY_FILE.read_bytes()
        ),
        "bundle": _bundle_hash(),
        "warehouse": spark_uri or warehouse_uri(warehouse),
        "admin": username,
        "data_docs": data_docs_url,
        "metadata": _metadata_key(),
        "language": language,
        "currency": currency,
        "catalogue": _sha256(b"".join(p.read_bytes() for p in sorted(CATALOGUE_DIR.glob("*")))),
    }


def _read_stamp(sdir: Path) -> dict[str, str]:
    try:
        return json.loads((sdir / "prepared.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def prepare(
    warehouse: Path,
    state_dir: Path,
    *,
    data_docs_url: str = DEFAULT_DATA_DOCS_URL,
    language: str = DEFAULT_LANGUAGE,
    currency: str = DEFAULT_CURRENCY,
    spark_uri: str | None = None,
) -> SupersetCredentials:
    """Get Superset ready to serve ``warehouse``: metadata DB, admin, database, dashboards.

    Idempotent, so the CLI calls it before every start: migrations and ``superset init``
    run only when the state is new or the installed Superset changed; the admin is
    created once; the bundle is re-imported every time (it updates by UUID, never
    duplicates), after ``validate_bundle`` so a broken bundle fails before touching the
    metadata; then the roles and Row Level Security of ``dashboards/security.yaml`` are
    (re)applied. ``language`` (settings.yml ``dashboards.language``): the language of the
    dashboards' titles, labels and descriptions; ``currency`` (``company.reporting_currency``):
    the symbol their text names. Returns the admin credentials for the CLI
    to show.

    ``spark_uri`` (`thrift_uri`): the dashboards read that Spark Thrift server's marts
    instead of ``warehouse`` (`build_bundle_zip`), for Admin only: there is no masked copy,
    and the roles and row level security of ``dashboards/security.yaml`` are not applied
    (those an earlier DuckDB prepare of this state applied stay as they were).
    """
    warehouse = Path(warehouse).resolve()
    if spark_uri is None:
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

    zip_path = build_bundle_zip(
        warehouse,
        sdir / "bundle.zip",
        data_docs_url=data_docs_url,
        language=language,
        currency=currency,
        spark_uri=spark_uri,
    )
    # one Superset process for both (loading Superset costs seconds)
    security = [str(SECURITY_FILE)] if spark_uri is None else []
    _run_superset(
        ["python", str(IMPORT_SCRIPT), str(zip_path), creds.username, *security],
        sdir,
        what="dashboards bundle import" + (", roles and row level security" if security else ""),
    )
    stamp = _stamp(warehouse, creds.username, data_docs_url, language, currency, spark_uri)
    _write_private(sdir / "prepared.json", json.dumps(stamp) + "\n")
    return creds


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def health_ok(base_url: str) -> bool:
    """Whether ``<base_url>/health`` answers 200 now."""
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_healthy(base_url: str, proc: subprocess.Popen | None = None, timeout: float = 120) -> None:
    """Poll ``<base_url>/health`` until it answers OK; fail early if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SupersetError(f"Superset exited with code {proc.returncode} while starting")
        if health_ok(base_url):
            return
        time.sleep(0.5)
    raise SupersetError(f"Superset did not answer {base_url}/health within {timeout:.0f}s")


#: gunicorn's access log line: time, method, path (no query string), status, milliseconds
ACCESS_LOG_FORMAT = "%(t)s %(m)s %(U)s %(s)s %(M)sms"


def server_command(port: int, threads: int = 4) -> list[str]:
    """The web server's command line: gunicorn (one worker, ``threads`` threads) on
    127.0.0.1:``port`` rather than ``superset run``, which is Flask's development server.
    Every request is logged (server.log) with its status and milliseconds: the path only,
    never the query string (filters, values). Nothing is written outside the state folder."""
    return [
        str(venv_dir() / "bin" / "gunicorn"),
        "--bind", f"127.0.0.1:{port}",
        "--workers", "1",
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--timeout", "120",
        "--graceful-timeout", "10",
        "--limit-request-line", "0",
        "--limit-request-field_size", "0",
        "--access-logfile", "-",
        # no control socket: gunicorn's default path is one per user (~/.gunicorn), which
        # every server of that user would take over from the others
        "--no-control-socket",
        "--access-logformat", ACCESS_LOG_FORMAT,
        "superset.app:create_app()",
    ]  # fmt: skip


def server_env(
    state_dir: Path,
    data_docs_dir: Path | None = None,
    *,
    language: str = DEFAULT_LANGUAGE,
    currency: str = DEFAULT_CURRENCY,
    warehouse: Path | None = None,
) -> dict[str, str]:
    """The web server's environment (no secret, ``_superset_env``); ``data_docs_dir``:
    the GX Data Docs site it serves at ``/crmwh/data-docs/`` to the roles that may read it;
    ``language`` and ``currency``: the interface's default language and the number locale
    (thousands marks, the reporting currency's symbol) ``superset_config`` builds;
    ``warehouse``: the served file, whose version (with its masked copy's) prefixes every
    chart-data cache key (``dashboards/server/published_cache.py``)."""
    env = _superset_env(superset_state_dir(state_dir))
    env["CRMWH_DASHBOARDS_LANGUAGE"] = language
    env["CRMWH_REPORTING_CURRENCY"] = currency
    if warehouse is not None:
        served = Path(warehouse).resolve()
        env[SERVED_FILES_ENV] = os.pathsep.join(map(str, (served, masked_path(served))))
    if data_docs_dir is not None:
        env["CRMWH_DATA_DOCS_DIR"] = str(Path(data_docs_dir).resolve())
    return env


def ensure_port_free(port: int, what: str = "Superset") -> None:
    """Raise `SupersetError` when ``port`` on 127.0.0.1 is taken."""
    if not _port_free(port):
        raise SupersetError(f"port {port} on 127.0.0.1 is already in use ({what})")


def start(
    warehouse: Path,
    state_dir: Path,
    port: int = 8088,
    *,
    threads: int = 4,
    data_docs_url: str = DEFAULT_DATA_DOCS_URL,
    data_docs_dir: Path | None = None,
    language: str = DEFAULT_LANGUAGE,
    currency: str = DEFAULT_CURRENCY,
    spark_uri: str | None = None,
) -> subprocess.Popen:
    """Start the Superset web server on 127.0.0.1:``port``; return once ``/health`` is OK.

    `crmwh serve` does not call this: it runs the same command (``server_command``,
    ``server_env``) under its process manager (`pipelines.lib.serve`). This is the one
    server with a process handle of its own, for callers that drive a single Superset
    and need its pid: the test session's ``served`` fixture (it reads the server's
    ``/proc/<pid>/environ``) and the benchmark. Concurrent chart queries do not share a DuckDB
    connection: Superset opens analytics engines with a NullPool, so every query opens and
    closes its own read-only connection, which also lets a newly swapped-in warehouse
    file be seen without a restart. Runs ``prepare`` first when the state was prepared for
    another warehouse, bundle or Superset build. The process leads its own session:
    ``stop`` (or ``os.killpg``) ends the whole group. ``data_docs_dir``: the GX Data Docs
    site it serves at ``/crmwh/data-docs/`` to the roles that may read it. Its
    environment holds no secret (``_superset_env``). ``spark_uri``: serve a Spark Thrift
    server's marts instead of ``warehouse`` (`prepare`).
    """
    warehouse = Path(warehouse).resolve()
    sdir = superset_state_dir(state_dir)
    creds_user = os.environ.get("SUPERSET_ADMIN_USERNAME", "").strip() or "admin"
    stamp = _stamp(warehouse, creds_user, data_docs_url, language, currency, spark_uri)
    if _read_stamp(sdir) != stamp or not _venv_current(venv_dir()):
        prepare(
            warehouse,
            state_dir,
            data_docs_url=data_docs_url,
            language=language,
            currency=currency,
            spark_uri=spark_uri,
        )
    if spark_uri is None:
        ensure_masked(warehouse)
    ensure_port_free(port)
    log_path = sdir / "server.log"
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            server_command(port, threads),
            env=server_env(
                state_dir,
                data_docs_dir,
                language=language,
                currency=currency,
                warehouse=None if spark_uri else warehouse,
            ),  # fmt: skip
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
