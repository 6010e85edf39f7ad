"""`crmwh serve`: Superset (and the Dagster UI, and with `--reports` PostgreSQL, Redis and
Celery for scheduled e-mails) on 127.0.0.1 over the published warehouse, until stopped.

Each server runs in its own session (process group) so that stopping it stops everything
it started; `_stop_group` asks politely (SIGTERM), then kills after 20 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from pipelines.lib.child_env import scoped_environ
from pipelines.lib.settings import Settings

if TYPE_CHECKING:
    from pipelines.lib.reports import ReportsStack


def start_dagster_ui(settings: Settings, port: int, *, write: bool = False) -> subprocess.Popen:
    """The Dagster UI as `crmwh serve` starts it: on 127.0.0.1, behind the request guard
    of `pipelines.lib.dagster_ui`, read-only unless ``write`` (an engineer's session),
    with no secret in its environment (`pipelines.lib.child_env`), in its own session."""
    from pipelines.lib.child_env import without_secrets
    from pipelines.run import dagster_environment

    cmd = [sys.executable, "-m", "pipelines.lib.dagster_ui", "-m", "pipelines.definitions",
           "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    return subprocess.Popen(
        cmd if write else [*cmd, "--read-only"],
        env=without_secrets(**dagster_environment(settings)),
        cwd=settings.root,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def serve(
    settings: Settings,
    *,
    port: int = 8088,
    dagster_port: int = 3000,
    dagster: bool = True,
    dagster_write: bool = False,
    reports: bool = False,
    pg_port: int = 5433,
    redis_port: int = 6380,
) -> int:
    """Serve the warehouse of `settings` until SIGINT/SIGTERM; the exit code of `crmwh serve`."""
    from pipelines.lib import superset

    warehouse = settings.warehouse_path
    if not warehouse.exists():
        print(f"{warehouse} does not exist yet: run `crmwh run` first", file=sys.stderr)
        return 2
    superset.ensure_installed()
    reports_stack = None
    if reports:  # Alerts & Reports: PostgreSQL metadata, Redis, Celery (lib/reports.py)
        from pipelines.lib import reports as reports_mode

        admin = os.environ.get("SUPERSET_ADMIN_USERNAME", "").strip() or "admin"
        try:
            reports_stack = reports_mode.start_services(
                settings, superset_port=port, pg_port=pg_port,
                redis_port=redis_port, admin_username=admin,
            )  # fmt: skip
        except reports_mode.ReportsError as exc:
            print(f"crmwh serve --reports: {exc}", file=sys.stderr)
            return 1
    # the reports stack's variables reach every Superset process started below (the
    # metadata commands of `prepare`, gunicorn, Celery), and only those
    with scoped_environ(reports_stack.env if reports_stack is not None else {}):
        return _serve(settings, reports_stack, port, dagster_port, dagster, dagster_write)


def _serve(
    settings: Settings,
    reports_stack: ReportsStack | None,
    port: int,
    dagster_port: int,
    dagster: bool,
    dagster_write: bool,
) -> int:
    from pipelines.lib import superset
    from pipelines.lib.quality import docs_dir

    warehouse = settings.warehouse_path
    procs: list[subprocess.Popen] = []
    try:
        creds = superset.prepare(warehouse, settings.state_dir)
        procs.append(
            superset.start(
                warehouse,
                settings.state_dir,
                port=port,
                data_docs_dir=docs_dir(settings.data_dir),
            )
        )
        if reports_stack is not None:
            scheduled = reports_stack.apply_schedules(settings, creds.username)
            reports_stack.start_celery()
            procs.extend(reports_stack.celery)
            print(f"Reports:   {', '.join(scheduled)} (dashboards/reports.yaml)")
        if dagster:
            procs.append(start_dagster_ui(settings, dagster_port, write=dagster_write))
        print(f"Superset:  http://127.0.0.1:{port}/  user {creds.username}")
        if creds.generated:
            print(f"           password {creds.password}  (stored in {creds.password_file})")
        else:
            print("           password: the one in SUPERSET_ADMIN_PASSWORD")
        print(
            f"Data Docs: http://127.0.0.1:{port}{superset.DEFAULT_DATA_DOCS_URL}"
            "  (Great Expectations, rebuilt by every run; Admin and Finance)"
        )
        if dagster:
            mode = "read-write" if dagster_write else "read-only; --dagster-write to launch"
            print(f"Dagster:   http://127.0.0.1:{dagster_port}/  ({mode})")
        print("Press Ctrl+C to stop.")
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        while not stop and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        for p in procs:
            _stop_group(p)
        if reports_stack is not None:
            reports_stack.stop()
    return 0


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
