"""A standalone Spark cluster on this machine: `crmwh spark start|stop|status`.

A master, N workers and the Spark Thrift (JDBC/ODBC) server, started from the locked
pyspark wheel with its `sbin/spark-daemon.sh` (the wheel has no start-master.sh and
friends). Everything lives under `<state>/spark-service/`: configuration
(`conf/spark-defaults.conf`), logs, pid files, the workers' and executors' scratch space,
the Thrift server's Derby metastore and its warehouse folder. Every process binds
127.0.0.1. `start` waits until the Thrift port answers `select 1`; `stop` stops what
`start` started, by pid file. Both are harmless when repeated. A company with its own
cluster starts nothing: dbt's thrift target takes its host, port and user.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.lib.settings import Settings

if TYPE_CHECKING:
    from pipelines.lib.spark import ThriftTarget

THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
IDENT = "crmwh"
HOST = "127.0.0.1"


class SparkServiceError(RuntimeError):
    """The cluster cannot start or stop; the message says why and where to look."""


@dataclass(frozen=True)
class ServiceConfig:
    """Ports and sizes of the local cluster (all on 127.0.0.1)."""

    master_port: int = 7077
    master_ui_port: int = 8080
    worker_ui_port: int = 8081  # worker i listens on worker_ui_port + i - 1
    thrift_port: int = 10000
    workers: int = 1
    worker_cores: int = 2
    worker_memory: str = "3g"
    executor_memory: str = "2g"
    driver_memory: str = "2g"
    user: str = "crmwh"
    start_timeout: float = 180.0

    def ports(self) -> dict[str, int]:
        ports = {
            "master": self.master_port,
            "master UI": self.master_ui_port,
            "Thrift server": self.thrift_port,
        }
        for i in range(1, self.workers + 1):
            ports[f"worker {i} UI"] = self.worker_ui_port + i - 1
        return ports


def service_dir(settings: Settings) -> Path:
    return settings.state_dir / "spark-service"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def java_home() -> str | None:
    """JAVA_HOME of a Java 17 or 21 (Spark 4's), preferring the one already set."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if java:
        return str(Path(java).resolve().parent.parent)
    for candidate in ("/usr/lib/jvm/java-17-openjdk-amd64", "/usr/lib/jvm/java-21-openjdk-amd64"):
        if Path(candidate, "bin/java").exists():
            return candidate
    return None


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_CONF_DIR=str(home / "conf"),
        SPARK_LOG_DIR=str(home / "logs"),
        SPARK_PID_DIR=str(home / "pids"),
        SPARK_WORKER_DIR=str(home / "work"),
        SPARK_LOCAL_DIRS=str(home / "local"),
        SPARK_LOCAL_IP=HOST,
        SPARK_IDENT_STRING=IDENT,
    )
    jh = java_home()
    if jh:
        env["JAVA_HOME"] = jh
    env.pop("SPARK_MASTER", None)  # spark-daemon.sh would rsync from it
    return env


def _write_conf(home: Path, config: ServiceConfig) -> None:
    for sub in ("conf", "logs", "pids", "work", "local", "warehouse"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    defaults = {
        # the Thrift server ignores a client's session settings: these are the sessions'
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.enabled": "true",
        # an INSERT OVERWRITE writes under its own staging folder, so that two of dbt's
        # sessions replacing partitions of one table at once (the incremental models'
        # state table) never share, and delete, each other's `_temporary` folder
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={home} -Dderby.stream.error.file={home / 'logs/derby.log'}"
        ),
        "spark.driver.host": HOST,
        "spark.driver.bindAddress": HOST,
        "spark.driver.memory": config.driver_memory,
        "spark.executor.memory": config.executor_memory,
        "spark.ui.enabled": "false",
    }
    text = "".join(f"{k} {v}\n" for k, v in defaults.items())
    (home / "conf" / "spark-defaults.conf").write_text(text)


def _pid_file(home: Path, cls: str, instance: int) -> Path:
    return home / "pids" / f"spark-{IDENT}-{cls}-{instance}.pid"


def _running_pid(path: Path) -> int | None:
    """The pid in a pid file when that process is alive (and a JVM), else None."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None
    return pid if comm == "java" else None


def port_open(port: int, host: str = HOST) -> bool:
    """Whether something listens on `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def thrift_select_one(port: int, user: str, host: str = HOST) -> bool:
    """Whether the Thrift server at host:port answers `select 1` (PyHive, SASL PLAIN)."""
    import logging

    from pyhive import hive

    # thrift logs every refused connection as an error: while waiting, that is expected
    logging.getLogger("thrift.transport.TSocket").setLevel(logging.CRITICAL)
    try:
        conn = hive.connect(host=host, port=port, username=user)
    except Exception:
        return False
    try:
        cursor = conn.cursor()
        cursor.execute("select 1")
        return cursor.fetchall() == [(1,)]
    except Exception:
        return False
    finally:
        conn.close()


def thrift_query(target: ThriftTarget, sql: str) -> list[tuple]:
    """Rows of `sql` on the Thrift server of `target` (a `ThriftTarget`: host, port, user)."""
    from pyhive import hive

    conn = hive.connect(host=target.host, port=target.port, username=target.user)
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        conn.close()


def _daemon(home: Path, *args: str) -> subprocess.CompletedProcess:
    script = spark_home() / "sbin" / "spark-daemon.sh"
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["bash", str(script), *args], env=_env(home), cwd=home, capture_output=True, text=True
    )


def _components(config: ServiceConfig) -> list[tuple[str, str, int]]:
    """(name, class, instance) in start order."""
    parts = [("master", MASTER_CLASS, 1)]
    parts += [(f"worker {i}", WORKER_CLASS, i) for i in range(1, config.workers + 1)]
    parts.append(("Thrift server", THRIFT_CLASS, 1))
    return parts


def _log_tail(home: Path, cls: str, instance: int, lines: int = 15) -> str:
    logs = sorted((home / "logs").glob(f"spark-{IDENT}-{cls}-{instance}-*.out"))
    if not logs:
        return ""
    tail = logs[-1].read_text(errors="replace").splitlines()[-lines:]
    return f"\n  (last lines of {logs[-1]}):\n    " + "\n    ".join(tail)


def start(settings: Settings, config: ServiceConfig) -> str:
    """Start master, workers and Thrift server; return the addresses. Already running:
    nothing is started again."""
    home = service_dir(settings)
    running = {
        name: pid
        for name, cls, inst in _components(config)
        if (pid := _running_pid(_pid_file(home, cls, inst)))
    }
    if running and len(running) == len(_components(config)):
        return "already running\n" + addresses(config)
    if running:
        stop(settings, config)
    taken = [f"{name} port {port}" for name, port in config.ports().items() if not _port_free(port)]
    if taken:
        raise SparkServiceError(
            f"cannot start the Spark cluster: {', '.join(taken)} on {HOST} already in use "
            "(another program, or a cluster not started from this state folder); "
            "choose other ports (crmwh spark start --help)"
        )
    _write_conf(home, config)
    master_url = f"spark://{HOST}:{config.master_port}"
    steps: list[tuple[str, str, int, list[str]]] = [
        ("master", MASTER_CLASS, 1,
         ["start", MASTER_CLASS, "1", "--host", HOST, "--port", str(config.master_port),
          "--webui-port", str(config.master_ui_port)]),
    ]  # fmt: skip
    for i in range(1, config.workers + 1):
        steps.append((f"worker {i}", WORKER_CLASS, i,
                      ["start", WORKER_CLASS, str(i), "--host", HOST,
                       "--cores", str(config.worker_cores), "--memory", config.worker_memory,
                       "--webui-port", str(config.worker_ui_port + i - 1),
                       "--work-dir", str(home / "work"), master_url]))  # fmt: skip
    steps.append(("Thrift server", THRIFT_CLASS, 1,
                  ["submit", THRIFT_CLASS, "1", "--master", master_url,
                   "--name", "crmwh-thrift",
                   "--hiveconf", f"hive.server2.thrift.port={config.thrift_port}",
                   "--hiveconf", f"hive.server2.thrift.bind.host={HOST}",
                   "--hiveconf", f"hive.exec.scratchdir={home / 'local/hive'}",
                   "--hiveconf", f"hive.exec.local.scratchdir={home / 'local/hive-local'}",
                   "--hiveconf", f"hive.downloaded.resources.dir={home / 'local'}/${{hive.session.id}}_resources"]))  # fmt: skip
    for name, cls, inst, args in steps:
        done = _daemon(home, *args)
        if not _running_pid(_pid_file(home, cls, inst)):
            stop(settings, config)
            raise SparkServiceError(
                f"the Spark {name} did not start: {done.stdout.strip()} {done.stderr.strip()}"
                + _log_tail(home, cls, inst)
            )
    deadline = time.monotonic() + config.start_timeout
    while not thrift_select_one(config.thrift_port, config.user):
        if not _running_pid(_pid_file(home, THRIFT_CLASS, 1)) or time.monotonic() > deadline:
            why = (
                "exited"
                if not _running_pid(_pid_file(home, THRIFT_CLASS, 1))
                else f"did not answer `select 1` within {config.start_timeout:.0f}s"
            )
            tail = _log_tail(home, THRIFT_CLASS, 1)
            stop(settings, config)
            raise SparkServiceError(f"the Spark Thrift server {why}{tail}")
        time.sleep(2)
    return "started\n" + addresses(config)


def addresses(config: ServiceConfig) -> str:
    return (
        f"  master     spark://{HOST}:{config.master_port} (UI http://{HOST}:{config.master_ui_port})\n"
        f"  workers    {config.workers} × {config.worker_cores} cores, {config.worker_memory}\n"
        f"  Thrift     {HOST}:{config.thrift_port} (user {config.user}; dbt `method: thrift`)"
    )


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
        while Path(f"/proc/{pid}").exists():
            time.sleep(0.1)


def stop(settings: Settings, config: ServiceConfig) -> list[str]:
    """Stop the Thrift server, the workers (and their executors) and the master, by their
    pid files; returns the names of what was running."""
    home = service_dir(settings)
    stopped = []
    # workers of an earlier start with more of them than this config names
    instances = sorted(
        int(p.stem.rsplit("-", 1)[1])
        for p in (home / "pids").glob(f"spark-{IDENT}-{WORKER_CLASS}-*.pid")
    ) if (home / "pids").is_dir() else []  # fmt: skip
    parts = [("Thrift server", THRIFT_CLASS, 1)]
    parts += [(f"worker {i}", WORKER_CLASS, i) for i in instances]
    parts.append(("master", MASTER_CLASS, 1))
    for name, cls, inst in parts:
        pid_file = _pid_file(home, cls, inst)
        pid = _running_pid(pid_file)
        if pid:
            _daemon(home, "stop", cls, str(inst))
            _wait_gone(pid)
            stopped.append(name)
        pid_file.unlink(missing_ok=True)
    return stopped


def status(settings: Settings, config: ServiceConfig) -> tuple[bool, str]:
    """(everything up and answering, one line per component)."""
    home = service_dir(settings)
    lines, all_up = [], True
    instances = sorted(
        int(p.stem.rsplit("-", 1)[1])
        for p in (home / "pids").glob(f"spark-{IDENT}-{WORKER_CLASS}-*.pid")
    ) if (home / "pids").is_dir() else []  # fmt: skip
    parts = [("master", MASTER_CLASS, 1)]
    parts += [(f"worker {i}", WORKER_CLASS, i) for i in instances or [1]]
    parts.append(("Thrift server", THRIFT_CLASS, 1))
    for name, cls, inst in parts:
        pid = _running_pid(_pid_file(home, cls, inst))
        all_up = all_up and pid is not None
        lines.append(f"  {name:14s} {'running, pid ' + str(pid) if pid else 'stopped'}")
    answers = all_up and thrift_select_one(config.thrift_port, config.user)
    lines.append(
        f"  Thrift {HOST}:{config.thrift_port} "
        + ("answers `select 1`" if answers else "does not answer")
    )
    return answers, "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`crmwh spark start|stop|status` flags (ports and sizes; defaults: ServiceConfig)."""
    d = ServiceConfig()
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--workers", type=int, default=d.workers, help="number of workers")
    parser.add_argument("--worker-cores", type=int, default=d.worker_cores)
    parser.add_argument("--worker-memory", default=d.worker_memory,
                        help="memory per worker (at least the executor memory)")  # fmt: skip
    parser.add_argument("--executor-memory", default=d.executor_memory)
    parser.add_argument("--master-port", type=int, default=d.master_port)
    parser.add_argument("--master-ui-port", type=int, default=d.master_ui_port)
    parser.add_argument("--worker-ui-port", type=int, default=d.worker_ui_port,
                        help="UI port of worker 1 (worker i: this + i - 1)")  # fmt: skip
    parser.add_argument("--thrift-port", type=int, default=d.thrift_port)
    parser.add_argument("--user", default=d.user, help="user the Thrift check connects as")


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    return ServiceConfig(
        master_port=args.master_port,
        master_ui_port=args.master_ui_port,
        worker_ui_port=args.worker_ui_port,
        thrift_port=args.thrift_port,
        workers=args.workers,
        worker_cores=args.worker_cores,
        worker_memory=args.worker_memory,
        executor_memory=args.executor_memory,
        user=args.user,
    )


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """`crmwh spark ACTION`: 0 done (status: everything up), 1 failed or not running."""
    from pipelines.lib.spark import check_requirements

    config = config_from_args(args)
    if args.action == "stop":
        stopped = stop(settings, config)
        print("stopped " + ", ".join(stopped) if stopped else "nothing was running")
        return 0
    if args.action == "status":
        up, text = status(settings, config)
        print(text)
        return 0 if up else 1
    problems = check_requirements()
    if problems:
        for p in problems:
            print(f"crmwh spark start: {p}", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    try:
        text = start(settings, config)
    except SparkServiceError as exc:
        print(f"crmwh spark start: {exc}", file=sys.stderr)
        return 1
    print(f"Spark cluster {text}\n  state      {service_dir(settings)}")
    print(f"  ({time.monotonic() - t0:.0f}s)")
    return 0
