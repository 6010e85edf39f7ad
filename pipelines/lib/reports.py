"""Scheduled e-mail reports through Superset's Alerts & Reports (``crmwh serve --reports``).

What the reports mode adds to a plain ``crmwh serve``, all of it private to the state
directory (``<state>/reports``) and bound to 127.0.0.1:

- a PostgreSQL cluster (Debian's ``postgresql``: ``initdb`` once, ``pg_ctl`` on a private
  port, scram-sha-256 password generated once) holding Superset's metadata. Superset's
  Alerts & Reports fail on a SQLite metadata database (apache/superset#25969), so this
  mode moves the metadata; the default ``crmwh serve`` keeps SQLite;
- a Redis server (Debian's ``redis-server``, password-protected, no persistence) as the
  Celery broker and result store;
- Superset's Celery worker and beat; beat runs ``reports.scheduler`` every minute, which
  queues every report whose crontab falls in that minute; the worker renders the
  dashboard in Debian's headless Chromium (``/usr/bin/chromium`` driven by
  ``/usr/bin/chromedriver``) as the fixed executor (the Superset admin) and e-mails it;
- the schedules of ``dashboards/reports.yaml``, created or updated by name.

PostgreSQL refuses to run as root; started by root, the cluster runs as the ``postgres``
system user (``runuser``), so the state directory must be reachable by that user.
PostgreSQL is started and stopped by ``pg_ctl`` (``ReportsStack.stop``); Redis and Celery are
entries of the process list that `crmwh serve` runs under its process manager
(`pipelines.lib.serve`), which stops them together.

Long because: one feature, read top to bottom in the order it starts its services
(PostgreSQL, Redis, Superset's metadata, Celery, the schedules); each part is short and
the parts share the stack object and its private folder.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.lib import superset
from pipelines.lib.settings import Settings

REPORTS_FILE = superset.DASHBOARDS_DIR / "reports.yaml"
APPLY_SCRIPT = superset.SERVER_DIR / "apply_reports.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PG_USER = "crmwh"
PG_DATABASE = "superset"
CELERY_APP = "superset.tasks.celery_app:app"
#: overrides every crontab of reports.yaml (tests: "* * * * *")
CRONTAB_ENV = "CRMWH_REPORTS_CRONTAB"
_PG_SYSTEM_USER = "postgres"


class ReportsError(RuntimeError):
    """A part of the reports mode could not be started; the message says which and why."""


# --------------------------------------------------------------------------- helpers


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text("utf-8", "replace").strip().splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _secret(path: Path) -> str:
    """A random password stored once in ``path`` (mode 600)."""
    if path.exists() and path.read_text(encoding="utf-8").strip():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_hex(24)  # hex: safe in URLs and config files unquoted
    superset._write_private(path, value + "\n")
    return value


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def missing_system_packages() -> list[str]:
    """Debian packages the reports mode needs that are not installed (by their files)."""
    missing = []
    if not _pg_bin_dir():
        missing.append("postgresql")
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if not CHROMIUM.exists():
        missing.append("chromium")
    if not CHROMEDRIVER.exists():
        missing.append("chromium-driver")
    return missing


# --------------------------------------------------------------------------- postgres


def _pg_bin_dir() -> Path | None:
    """Debian keeps initdb/pg_ctl in /usr/lib/postgresql/<major>/bin; newest wins."""
    found = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_pg_user(cmd: list[str]) -> list[str]:
    """Root may not run PostgreSQL: run its programs as the ``postgres`` system user."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", _PG_SYSTEM_USER, "--", *cmd]


def _grant_traversal(path: Path) -> None:
    """As root: let the postgres user reach ``path`` (owned dirs get o+x, others checked)."""
    pg = pwd.getpwnam(_PG_SYSTEM_USER)
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid == pg.pw_uid or st.st_mode & 0o001:
            continue
        if parent.is_relative_to(path.parents[1]):  # the state directory and below: ours
            os.chmod(parent, st.st_mode | 0o001)
            continue
        raise ReportsError(
            f"PostgreSQL runs as the '{_PG_SYSTEM_USER}' user, which cannot enter {parent}"
            f" (mode {oct(st.st_mode & 0o777)}): put the state directory elsewhere"
            " (CRMWH_PATHS__STATE) or allow traversal (chmod o+x)"
        )


def _run(cmd: list[str], what: str, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if result.returncode != 0:
        raise ReportsError(
            f"{what} failed (exit {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"
        )
    return result.stdout


def _pg_uri(port: int) -> str:
    return f"postgresql+psycopg2://{PG_USER}@127.0.0.1:{port}/{PG_DATABASE}"


@dataclass
class Postgres:
    """A private PostgreSQL cluster under ``<state>/reports/postgres``."""

    rdir: Path
    port: int
    bin_dir: Path
    password: str = field(repr=False)

    @property
    def data_dir(self) -> Path:
        return self.rdir / "postgres"

    @property
    def log_file(self) -> Path:
        return self.rdir / "postgres.log"

    def _env(self) -> dict[str, str]:
        return dict(os.environ, PGPASSWORD=self.password, PGCONNECT_TIMEOUT="10")

    def init(self) -> None:
        """``initdb`` once: superuser ``crmwh`` with the stored password, UTF-8."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        root = os.geteuid() == 0
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)  # a half-made cluster from an interrupted initdb
        self.data_dir.mkdir(mode=0o700, parents=True)
        pwfile = self.rdir / "initdb.pw"
        superset._write_private(pwfile, self.password + "\n")
        if root:
            pg = pwd.getpwnam(_PG_SYSTEM_USER)
            _grant_traversal(self.data_dir)
            os.chown(self.data_dir, pg.pw_uid, pg.pw_gid)
            os.chown(pwfile, pg.pw_uid, pg.pw_gid)
        try:
            _run(
                _as_pg_user(
                    [
                        str(self.bin_dir / "initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        PG_USER,
                        f"--pwfile={pwfile}",
                        "--auth=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),  # fmt: skip
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def running(self) -> bool:
        result = subprocess.run(
            _as_pg_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"]),
            capture_output=True,
            text=True,
        )
        return result.returncode == 0

    def start(self) -> None:
        if self.running():
            raise ReportsError(
                f"the PostgreSQL cluster in {self.data_dir} is already running: another"
                " `crmwh serve --reports` on this state directory? Stop it first."
            )
        if _port_open(self.port):
            raise ReportsError(f"port {self.port} on 127.0.0.1 is already in use (PostgreSQL)")
        if os.geteuid() == 0:
            pg = pwd.getpwnam(_PG_SYSTEM_USER)
            self.log_file.touch()
            os.chown(self.log_file, pg.pw_uid, pg.pw_gid)
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
            " -c max_connections=50 -c shared_buffers=32MB"
        )
        try:
            _run(
                _as_pg_user(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-l",
                        str(self.log_file),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        "120",
                        "start",
                    ]
                ),  # fmt: skip
                "pg_ctl start",
            )
        except ReportsError as exc:
            raise ReportsError(f"{exc}\n{self.log_file}:\n{_tail(self.log_file)}") from None

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(
                _as_pg_user(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "fast",
                        "-w",
                        "stop",
                    ]
                ),
                capture_output=True,
                timeout=120,
            )

    def psql(self, sql: str, database: str = "postgres") -> str:
        return _run(
            [
                str(self.bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                PG_USER,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                sql,
            ],  # fmt: skip
            "psql",
            env=self._env(),
        ).strip()

    def ensure_database(self) -> str:
        """Create the metadata database once; return an id unique to it.

        The id (cluster system identifier and database oid) tells ``superset.prepare``
        that a re-created cluster or database needs migrations and an admin again.
        """
        if not self.psql(f"select 1 from pg_database where datname = '{PG_DATABASE}'"):
            self.psql(f"create database {PG_DATABASE} encoding 'UTF8' template template0")
        oid = self.psql(f"select oid from pg_database where datname = '{PG_DATABASE}'")
        sysid = self.psql("select system_identifier from pg_control_system()")
        return f"postgres:{sysid}:{oid}"

    @property
    def uri(self) -> str:
        """The metadata database's address without its password, which Superset's
        configuration reads from ``<state>/reports/postgres_password``."""
        return _pg_uri(self.port)


# --------------------------------------------------------------------------- redis


def _redis_ping(port: int, password: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            data = b""
            while data.count(b"\r\n") < 2:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
        return data.startswith(b"+OK") and b"+PONG" in data
    except OSError:
        return False


def redis_ready(port: int, rdir: Path) -> bool:
    """Whether the Redis of the reports mode answers on ``port`` with its password."""
    return _redis_ping(port, _secret(rdir / "redis_password"))


def write_redis_conf(rdir: Path, port: int) -> Path:
    """Redis's configuration (password, no persistence, 127.0.0.1:``port``), mode 600:
    the password stays out of the command line and the environment."""
    if _port_open(port):
        raise ReportsError(f"port {port} on 127.0.0.1 is already in use (Redis)")
    work = rdir / "redis"
    work.mkdir(parents=True, exist_ok=True)
    conf = rdir / "redis.conf"
    superset._write_private(
        conf,
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                "protected-mode yes",
                f"requirepass {_secret(rdir / 'redis_password')}",
                'save ""',
                "appendonly no",
                f"dir {work}",
                "daemonize no",
                "loglevel notice",
                "",
            ]
        ),
    )
    return conf


def redis_command(rdir: Path) -> list[str]:
    """Redis in the foreground with the configuration of `write_redis_conf`."""
    return [shutil.which("redis-server") or "redis-server", str(rdir / "redis.conf")]


def celery_commands(rdir: Path, concurrency: int = 1) -> dict[str, list[str]]:
    """Superset's Celery worker and beat: name -> command line."""
    celery = str(superset.venv_dir() / "bin" / "celery")
    return {
        "celery-worker": [
            celery, f"--app={CELERY_APP}", "worker",
            "--pool=prefork", f"--concurrency={concurrency}", "--loglevel=INFO",
            "--hostname=crmwh-reports@%h", "--without-mingle", "--without-gossip",
        ],
        "celery-beat": [
            celery, f"--app={CELERY_APP}", "beat", "--loglevel=INFO",
            f"--schedule={rdir / 'celerybeat-schedule'}", "--pidfile=",
        ],
    }  # fmt: skip


def celery_worker_ready(log: Path) -> bool:
    """Whether the worker's log (``<rdir>/celery-worker.log``) says it is ready."""
    try:
        return " ready." in log.read_text("utf-8", "replace")
    except FileNotFoundError:
        return False


# --------------------------------------------------------------------------- settings


def smtp_env(settings: Settings) -> dict[str, str]:
    """The SMTP server of ``settings.yml`` (``notifications``) for Superset's mailer;
    the password is not in it (``write_smtp_password``)."""
    cfg = settings.section("notifications")
    return {
        "CRMWH_SMTP_HOST": str(cfg.get("smtp_host") or "localhost"),
        "CRMWH_SMTP_PORT": str(int(cfg.get("smtp_port") or 25)),
        "CRMWH_SMTP_STARTTLS": "1" if cfg.get("smtp_starttls") else "0",
        "CRMWH_SMTP_SSL": "1" if cfg.get("smtp_ssl") else "0",
        "CRMWH_SMTP_USER": str(cfg.get("smtp_user") or ""),
        "CRMWH_SMTP_MAIL_FROM": str(cfg.get("email_from") or "crm-warehouse@localhost"),
    }


def write_smtp_password(settings: Settings, rdir: Path) -> None:
    """Keep ``notifications.smtp_password`` in ``<rdir>/smtp_password`` (mode 600), or
    no such file when there is none."""
    password = str(settings.section("notifications").get("smtp_password") or "")
    path = rdir / "smtp_password"
    if password:
        superset._write_private(path, password + "\n")
    else:
        path.unlink(missing_ok=True)


def resolve_reports(settings: Settings, path: Path = REPORTS_FILE) -> list[dict[str, Any]]:
    """The reports of ``reports.yaml`` with recipients, time zone and crontab resolved, and
    their description and e-mail subject in the dashboards' language (``name`` is the key a
    schedule is updated by: never translated)."""
    from dashboards.spec.i18n import localize

    spec = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    spec = localize({"reports.yaml": spec}, settings.dashboards_language)[0]["reports.yaml"]
    notifications = settings.section("notifications")
    crontab_override = os.environ.get(CRONTAB_ENV, "").strip()
    resolved = []
    for report in spec.get("reports") or []:
        for key in ("name", "dashboard", "crontab"):
            if not report.get(key):
                raise ReportsError(f"{path}: a report has no {key!r}")
        key = report.get("recipients_setting") or "report_to"
        recipients = notifications.get(key) or []
        if isinstance(recipients, str):
            recipients = [r.strip() for r in recipients.split(",")]
        recipients = [str(r).strip() for r in recipients if str(r).strip()]
        for address in recipients:
            if "@" not in address:
                raise ReportsError(f"notifications.{key}: {address!r} is not an e-mail address")
        resolved.append(
            {
                **report,
                "crontab": crontab_override or str(report["crontab"]),
                "timezone": report.get("timezone") or settings.timezone,
                "recipients": recipients,
            }
        )
    return resolved


# --------------------------------------------------------------------------- the stack


@dataclass
class ReportsStack:
    """What the reports mode runs outside the process manager of `crmwh serve`: the
    PostgreSQL cluster (``pg_ctl`` manages its daemon); ``env`` is what Superset processes
    need. Redis and Celery are entries of serve's process list (`redis_command`,
    `celery_commands`)."""

    state_dir: Path
    postgres: Postgres
    env: dict[str, str] = field(repr=False)

    @property
    def rdir(self) -> Path:
        return self.postgres.rdir

    def _superset_env(self) -> dict[str, str]:
        sdir = superset.superset_state_dir(self.state_dir)
        return {**superset._superset_env(sdir), **self.env}

    def apply_schedules(self, settings: Settings, owner: str) -> dict[str, int]:
        """Create or update the reports of ``reports.yaml``; return name -> report id."""
        sdir = superset.superset_state_dir(self.state_dir)
        payload = json.dumps({"owner": owner, "reports": resolve_reports(settings)})
        result = subprocess.run(
            [str(superset.venv_dir() / "bin" / "python"), str(APPLY_SCRIPT)],
            env=self._superset_env(),
            cwd=sdir,
            input=payload,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise ReportsError(f"applying {REPORTS_FILE.name} failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        """Stop PostgreSQL; safe to call twice."""
        self.postgres.stop()


def reports_env(
    settings: Settings,
    rdir: Path,
    *,
    superset_port: int,
    pg_port: int = 5433,
    redis_port: int = 6380,
    admin_username: str = "admin",
) -> dict[str, str]:
    """The variables every Superset process of the reports mode gets (web server, Celery
    worker and beat, the metadata commands); no secret: Superset's configuration reads
    the passwords from private files of ``rdir`` (``CRMWH_REPORTS_DIR``)."""
    return {
        "CRMWH_SUPERSET_REPORTS": "1",
        "CRMWH_REPORTS_DIR": str(rdir),
        "CRMWH_SUPERSET_DATABASE_URI": _pg_uri(pg_port),
        "CRMWH_SUPERSET_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "CRMWH_SUPERSET_BASEURL": f"http://127.0.0.1:{superset_port}/",
        "CRMWH_REPORTS_EXECUTOR": admin_username,
        "CRMWH_CHROMEDRIVER": str(CHROMEDRIVER),
        **smtp_env(settings),
    }


def reports_dir(settings: Settings) -> Path:
    """The private folder of the reports mode, ``<state>/reports``."""
    return Path(settings.state_dir).resolve() / "reports"


def start_services(
    settings: Settings,
    *,
    superset_port: int,
    pg_port: int = 5433,
    redis_port: int = 6380,
    admin_username: str = "admin",
) -> ReportsStack:
    """Start PostgreSQL for the reports mode and write Redis's configuration; return the
    stack and its env.

    Apply ``stack.env`` to the environment of ``superset.prepare`` and of every Superset
    process (`crmwh serve` sets it around them: ``child_env.scoped_environ``); Redis and
    Celery then run in serve's process list, and ``apply_schedules`` once Superset is up.
    ``stack.env`` holds no password: the PostgreSQL, Redis and SMTP passwords stay in
    private files of ``<state>/reports`` that Superset's configuration reads.
    """
    missing = missing_system_packages()
    if missing:
        raise ReportsError(
            "the reports mode needs Debian packages " + ", ".join(missing)
            + ": run `bash scripts/setup_reports.sh` (as root)"
        )  # fmt: skip
    state_dir = Path(settings.state_dir).resolve()
    rdir = reports_dir(settings)
    rdir.mkdir(parents=True, exist_ok=True)
    os.chmod(rdir, 0o700 if os.geteuid() != 0 else 0o711)
    write_redis_conf(rdir, redis_port)
    bin_dir = _pg_bin_dir()
    assert bin_dir is not None
    pg = Postgres(rdir, pg_port, bin_dir, _secret(rdir / "postgres_password"))
    pg.init()
    pg.start()
    stack = ReportsStack(state_dir, pg, env={})
    try:
        metadata_id = pg.ensure_database()
        write_smtp_password(settings, rdir)
        env = reports_env(
            settings, rdir, superset_port=superset_port, pg_port=pg_port,
            redis_port=redis_port, admin_username=admin_username,
        )  # fmt: skip
        # read by `superset.prepare` only: a re-created cluster needs migrations again
        stack.env = {**env, "CRMWH_SUPERSET_METADATA_ID": metadata_id}
    except BaseException:
        stack.stop()
        raise
    return stack
