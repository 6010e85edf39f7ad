"""`crmwh serve`: Superset (and the Dagster UI, and with `--reports` PostgreSQL, Redis and
Celery for scheduled e-mails) on 127.0.0.1 over the published warehouse, until stopped.

The long-running processes are a declared process list (`services`): one `Service` each
(name, command line, working folder, environment, log file), written as a Procfile to
``<state>/Procfile`` on every start and shown by ``crmwh serve --print-procfile`` without
starting anything. honcho's `Manager` runs the list: it starts every process in its own
session, sends SIGTERM to every process group when one of them stops or when serve gets
SIGTERM/SIGINT, SIGKILL after `KILL_WAIT` seconds, and serve exits non-zero when a process
stopped on its own.

Outside the process manager, because only this module can do them or honcho has no
place for them: PostgreSQL of the reports mode (``pg_ctl`` is its daemon manager; the
metadata preparation needs it before any Superset process starts, and it is stopped after
them); the metadata preparation (`superset.prepare`) before the list starts; and, while
it runs, a watcher thread that waits for Superset's ``/health``, applies the report
schedules, waits for the Celery worker and only then prints the addresses (honcho starts
its processes at once and knows nothing of readiness). `start_dagster_ui` and
`superset.start` start one server with a process handle of its own: the test session's
Superset and Dagster UI are shared by many tests that go on while the server runs and read
its ``/proc/<pid>/environ``, and the benchmark times one server, whereas honcho's
``Manager.loop`` blocks its caller until the whole list has ended. They run the same
command lines and environments as the process list.

honcho has no option for its SIGTERM-to-SIGKILL delay: `run` sets its module's
``KILL_WAIT`` (5 s by default) to ours.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import honcho.manager
from honcho.manager import SIGNALS, Manager
from honcho.printer import Message, Printer

from pipelines.lib.child_env import scoped_environ, without_secrets
from pipelines.lib.settings import Settings

#: seconds between SIGTERM and SIGKILL: gunicorn's graceful timeout is 10 s and a Celery
#: worker finishes the report it is rendering (honcho's own default is 5 s)
KILL_WAIT = 20
#: upper bounds of the watcher's waits (not delays): Superset's /health, the Celery worker
HEALTH_TIMEOUT = 300
CELERY_TIMEOUT = 180


@dataclass(frozen=True)
class Service:
    """One long-running process of `crmwh serve`.

    ``env`` is the whole environment it runs with (never a secret: `child_env`);
    ``base`` the environment it is derived from (serve's own), so that its Procfile line
    says only what differs: the variables it unsets and those it sets. ``log``: where
    its output goes (None: serve's standard output, prefixed with its name).
    """

    name: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(repr=False)
    base: Mapping[str, str] = field(repr=False)
    log: Path | None = None

    @property
    def environ(self) -> dict[str, str]:
        """``env`` with ``PWD`` its working folder (a shell started there sets that)."""
        return {**self.env, "PWD": str(self.cwd)}

    def command(self) -> str:
        """The shell command of its Procfile line: ``base`` turned into ``env`` by
        ``env -u NAME … NAME=value …``, in its working folder (``env -C``: a shell's
        ``cd`` would also change ``PWD``)."""
        env = self.environ
        unset = [arg for name in sorted(set(self.base) - set(env)) for arg in ("-u", name)]
        assign = [f"{k}={v}" for k, v in sorted(env.items()) if self.base.get(k) != v]
        return "exec " + shlex.join(["env", "-C", str(self.cwd), *unset, *assign, *self.argv])


def procfile(services: Sequence[Service]) -> str:
    """The process list as a Procfile (any Procfile runner: honcho, foreman, …)."""
    head = (
        "# crmwh serve's processes, written by every start (crmwh serve --print-procfile).\n"
        "# Each line derives its environment from the one it is started in; start it from\n"
        "# an environment without passwords. PostgreSQL of --reports runs under pg_ctl.\n"
    )
    return head + "".join(f"{s.name}: {s.command()}\n" for s in services)


def dagster_ui_service(settings: Settings, port: int, *, write: bool = False) -> Service:
    """The Dagster UI: on 127.0.0.1, behind the request guard of `pipelines.lib.dagster_ui`,
    read-only unless ``write`` (an engineer's session), with no secret and none of the
    reports mode's variables in its environment."""
    from pipelines.run import dagster_environment

    cmd = [sys.executable, "-m", "pipelines.lib.dagster_ui", "-m", "pipelines.definitions",
           "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    return Service(
        "dagster",
        tuple(cmd if write else [*cmd, "--read-only"]),
        Path(settings.root),
        without_secrets(**dagster_environment(settings)),
        dict(os.environ),
    )


def start_dagster_ui(settings: Settings, port: int, *, write: bool = False) -> subprocess.Popen:
    """`dagster_ui_service` started alone, in its own session, with a process handle (for
    a test that reads the server's environment; `crmwh serve` runs it in its list)."""
    svc = dagster_ui_service(settings, port, write=write)
    return subprocess.Popen(
        svc.argv,
        env=svc.environ,
        cwd=svc.cwd,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def services(
    settings: Settings,
    *,
    port: int = 8088,
    dagster_port: int = 3000,
    dagster: bool = True,
    dagster_write: bool = False,
    reports_env: Mapping[str, str] | None = None,
    spark: bool = False,
) -> list[Service]:
    """The process list of `crmwh serve` with these flags; ``reports_env``: the reports
    mode's variables (`reports.reports_env`), None without ``--reports``; ``spark``: the
    dashboards read a Spark Thrift server (no served file keys the chart cache).

    Every Superset process (web server, Celery worker and beat) gets Superset's
    environment plus ``reports_env``; Redis and the Dagster UI get neither."""
    from pipelines.lib import superset
    from pipelines.lib.quality import docs_dir

    parent = dict(os.environ)
    state = Path(settings.state_dir)
    sdir = superset.superset_state_dir(state)
    extra = dict(reports_env or {})
    web_env = {
        **superset.server_env(
            state,
            docs_dir(settings.data_dir),
            language=settings.dashboards_language,
            currency=settings.reporting_currency,
            warehouse=None if spark else settings.warehouse_path,
        ),
        **extra,
    }
    out = [
        Service(
            "superset", tuple(superset.server_command(port)), sdir, web_env, parent,
            sdir / "server.log",
        )
    ]  # fmt: skip
    if reports_env is not None:
        from pipelines.lib import reports

        rdir = Path(reports_env["CRMWH_REPORTS_DIR"])
        celery_env = {**superset._superset_env(sdir), **extra}
        out.insert(0, Service("redis", tuple(reports.redis_command(rdir)), rdir,
                              without_secrets(), parent, rdir / "redis.log"))  # fmt: skip
        for name, cmd in reports.celery_commands(rdir).items():
            out.append(Service(name, tuple(cmd), sdir, celery_env, parent, rdir / f"{name}.log"))
    if dagster:
        out.append(dagster_ui_service(settings, dagster_port, write=dagster_write))
    return out


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
    print_procfile: bool = False,
    engine: str | None = None,
) -> int:
    """Serve the warehouse of `settings` until SIGINT/SIGTERM; the exit code of `crmwh serve`
    (0 when stopped by a signal, non-zero when a process stopped on its own or a step
    failed). ``print_procfile``: print the process list and start nothing. ``engine``
    (default: settings.yml ``dbt.engine``): ``spark-thrift`` serves the marts of the Spark
    Thrift server of settings.yml ``spark:`` (`serve_spark_uri`) instead of the warehouse
    file, for Admin only."""
    from pipelines.lib import superset

    admin = os.environ.get("SUPERSET_ADMIN_USERNAME", "").strip() or "admin"
    flags: dict[str, Any] = dict(
        port=port, dagster_port=dagster_port, dagster=dagster, dagster_write=dagster_write
    )
    if reports:
        from pipelines.lib import reports as reports_mode

        env = reports_mode.reports_env(
            settings, reports_mode.reports_dir(settings), superset_port=port, pg_port=pg_port,
            redis_port=redis_port, admin_username=admin,
        )  # fmt: skip
        flags["reports_env"] = env
    if print_procfile:
        print(procfile(services(settings, **flags)), end="")
        return 0

    warehouse = settings.warehouse_path
    try:
        spark_uri = serve_spark_uri(settings, engine)
    except (ValueError, OSError) as exc:
        print(f"crmwh serve: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, OSError) else 2
    if spark_uri is None and not warehouse.exists():
        print(f"{warehouse} does not exist yet: run `crmwh run` first", file=sys.stderr)
        return 2
    superset.ensure_installed()
    try:
        superset.ensure_port_free(port)
        if dagster:
            superset.ensure_port_free(dagster_port, "Dagster UI")
    except superset.SupersetError as exc:
        print(f"crmwh serve: {exc}", file=sys.stderr)
        return 1
    stack = None
    if reports:  # Alerts & Reports: PostgreSQL metadata (pg_ctl), Redis's configuration
        from pipelines.lib import reports as reports_mode

        try:
            stack = reports_mode.start_services(
                settings, superset_port=port, pg_port=pg_port,
                redis_port=redis_port, admin_username=admin,
            )  # fmt: skip
        except reports_mode.ReportsError as exc:
            print(f"crmwh serve --reports: {exc}", file=sys.stderr)
            return 1
    try:
        # the metadata commands read the reports mode's variables (and the metadata id of
        # its PostgreSQL database) from this process's environment, for this block only
        with scoped_environ(stack.env if stack is not None else {}):
            creds = superset.prepare(
                warehouse,
                settings.state_dir,
                language=settings.dashboards_language,
                currency=settings.reporting_currency,
                spark_uri=spark_uri,
            )
        listed = services(settings, **flags, spark=spark_uri is not None)
        state = Path(settings.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        (state / "Procfile").write_text(procfile(listed), encoding="utf-8")

        def ready() -> None:
            base = f"http://127.0.0.1:{port}"
            print(f"Superset:  {base}/  user {creds.username}")
            if spark_uri is not None:
                print(f"           dashboards read {spark_uri} (Admin only)")
            if creds.generated:
                print(f"           password {creds.password}  (stored in {creds.password_file})")
            else:
                print("           password: the one in SUPERSET_ADMIN_PASSWORD")
            print(
                f"Data Docs: {base}{superset.DEFAULT_DATA_DOCS_URL}"
                "  (Great Expectations, rebuilt by every run; Admin and Finance)"
            )
            if dagster:
                mode = "read-write" if dagster_write else "read-only; --dagster-write to launch"
                print(f"Dagster:   http://127.0.0.1:{dagster_port}/  ({mode})")
            print("Press Ctrl+C to stop.", flush=True)

        def after_health(stopping: threading.Event) -> None:
            if stack is None:
                return
            rdir = stack.rdir
            _wait(lambda: reports_mode.redis_ready(redis_port, rdir), CELERY_TIMEOUT, "Redis",
                  stopping)  # fmt: skip
            scheduled = stack.apply_schedules(settings, creds.username)
            print(f"Reports:   {', '.join(scheduled)} (dashboards/reports.yaml)", flush=True)
            worker_log = rdir / "celery-worker.log"
            _wait(lambda: reports_mode.celery_worker_ready(worker_log), CELERY_TIMEOUT,
                  f"the Celery worker (log {worker_log})", stopping)  # fmt: skip

        return run(listed, f"http://127.0.0.1:{port}", after_health, ready)
    except (superset.SupersetError, OSError) as exc:
        print(f"crmwh serve: {exc}", file=sys.stderr)
        return 1
    finally:
        if stack is not None:
            stack.stop()


def serve_spark_uri(settings: Settings, engine: str | None = None) -> str | None:
    """The Superset URI of the Spark Thrift server to serve (`superset.thrift_uri` of
    settings.yml ``spark:`` host, port and user) when ``engine`` (default: settings.yml
    ``dbt.engine``) is ``spark-thrift``, None for ``duckdb``. Raises ValueError for another
    engine and OSError when nothing listens at the server's address."""
    import socket

    from pipelines.lib import superset
    from pipelines.lib.spark import ThriftTarget

    chosen = (engine or settings.dbt_engine).strip().lower()
    if chosen == "duckdb":
        return None
    if chosen != "spark-thrift":
        raise ValueError(f"engine {chosen!r} is not one of duckdb, spark-thrift")
    target = ThriftTarget.from_settings(settings)
    try:
        socket.create_connection((target.host, target.port), timeout=5).close()
    except OSError as exc:
        raise OSError(
            f"no Spark Thrift server listens at {target.host}:{target.port} (settings.yml "
            f"spark.thrift_host / thrift_port; `crmwh spark start` starts a local one): {exc}"
        ) from None
    return superset.thrift_uri(target.host, target.port, target.user)


class _Stopped(Exception):
    """The process list ended while the watcher waited."""


def _wait(
    check: Callable[[], bool], timeout: float, what: str, stop: threading.Event | None = None
) -> None:
    """Poll ``check`` until true; `_Stopped` once ``stop`` is set, TimeoutError after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if stop is not None and stop.is_set():
            raise _Stopped
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was not ready within {timeout:.0f}s")
        time.sleep(0.5)


def run(
    listed: Sequence[Service],
    superset_url: str,
    after_health: Callable[[threading.Event], None],
    ready: Callable[[], None],
) -> int:
    """Run ``listed`` under honcho until SIGINT/SIGTERM or until one process stops; meanwhile
    wait for ``superset_url``/health, then ``after_health`` (given an event set once the
    list has ended), then ``ready``. The exit code: 0 when stopped by a signal, else
    non-zero. honcho's loop must run in the main thread (it installs signal handlers), so
    the waits run in a watcher thread; a failing step stops the whole list."""
    from pipelines.lib import superset

    honcho.manager.KILL_WAIT = KILL_WAIT
    logs: dict[str, IO[bytes]] = {}
    for svc in listed:
        if svc.log is not None:
            if svc.name == "celery-worker":  # its "ready." line is waited for: a fresh log
                svc.log.write_bytes(b"")
            logs[svc.name] = open(svc.log, "ab")  # closed when the list has ended
    offsets = {name: log.tell() for name, log in logs.items()}  # where this run's lines begin
    manager = Manager(printer=_Output(logs))
    for svc in listed:
        manager.add_process(svc.name, svc.command(), env=svc.environ, cwd=str(svc.cwd))
    done, failed = threading.Event(), threading.Event()

    def watch() -> None:
        try:
            _wait(lambda: superset.health_ok(superset_url), HEALTH_TIMEOUT,
                  f"Superset ({superset_url}/health)", done)  # fmt: skip
            after_health(done)
            if not done.is_set():
                ready()
        except _Stopped:
            return
        except Exception as exc:  # any failure of a step stops the whole list
            print(f"crmwh serve: {exc}", file=sys.stderr, flush=True)
            failed.set()
            manager.terminate()

    # honcho's loop installs its own SIGTERM/SIGINT handlers; they are put back after it
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    watcher = threading.Thread(target=watch, name="crmwh-serve-ready", daemon=True)
    watcher.start()
    try:
        manager.loop()
    finally:
        done.set()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for log in logs.values():
            log.close()
    if not failed.is_set() and manager.returncode in {s["rc"] for s in SIGNALS.values()}:
        return 0  # stopped by SIGINT/SIGTERM, as asked
    if not failed.is_set():
        print(f"crmwh serve: a process stopped (rc={manager.returncode})", file=sys.stderr)
    for svc in listed:  # what the logged processes wrote in this run, last lines
        if svc.log is not None:
            with open(svc.log, "rb") as log:
                log.seek(offsets[svc.name])
                lines = log.read().decode("utf-8", "replace").strip().splitlines()[-10:]
            print(f"--- {svc.name}: {svc.log}", *lines, sep="\n", file=sys.stderr)
    if failed.is_set():
        return 1
    rc = manager.returncode
    return rc if isinstance(rc, int) and rc > 0 else 1


class _Output(Printer):
    """honcho's printer, except that a process with a log file writes there."""

    def __init__(self, logs: Mapping[str, IO[bytes]]) -> None:
        super().__init__(sys.stdout)
        self.logs = logs

    def write(self, message: Message) -> None:
        log = self.logs.get(message.name)
        if log is None:
            super().write(message)
            return
        data = message.data
        log.write(data if isinstance(data, bytes) else str(data).encode())
        log.flush()
