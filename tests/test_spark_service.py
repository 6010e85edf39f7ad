"""`crmwh spark start|stop|status`: a real standalone cluster from the pyspark wheel.

Master, one worker and the Thrift server start under a temporary state folder on free
ports of 127.0.0.1; the Thrift server answers a query through PyHive (the client dbt-spark's
`thrift` method uses); a port already taken is refused with its name; start and stop are
harmless when repeated; a run whose server is killed fails naming it; after stop no process
of the cluster (executors included) is left and no port is open. One cluster start for all.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.settings import load_settings
from pipelines.lib.spark import check_requirements
from pipelines.lib.spark_service import (
    HOST,
    ServiceConfig,
    SparkServiceError,
    port_open,
    service_dir,
    start,
    status,
    stop,
)
from tests.test_spark_contracts import HIVE_TYPE_ID

pytestmark = pytest.mark.slow


def free_ports(n: int) -> list[int]:
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.bind((HOST, 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def cluster_on_free_ports(cores: int, memory: str) -> ServiceConfig:
    """One worker of `cores` cores; worker, executor and driver of `memory` each."""
    master, master_ui, worker_ui, thrift = free_ports(4)
    return ServiceConfig(
        master_port=master, master_ui_port=master_ui, worker_ui_port=worker_ui,
        thrift_port=thrift, workers=1, worker_cores=cores, worker_memory=memory,
        executor_memory=memory, driver_memory=memory, start_timeout=600,
    )  # fmt: skip


def processes_under(folder: Path) -> list[int]:
    """Pids whose command line or working directory is in `folder` (daemons, executors)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(folder) in cmdline or cwd.startswith(str(folder)):
            found.append(int(proc.name))
    return found


def test_cluster_starts_answers_survives_a_dying_server_and_stops(tmp_path: Path):
    """One cluster, started as `crmwh spark start` does: a taken port refused first; the
    Thrift server answers through PyHive with the type ids the contract check maps; then
    `crmwh run --engine spark-thrift` whose server is killed (-9) while dbt builds ends (no
    hang on retries) with exit 1 and one line naming the server that stopped answering,
    instead of a line per dbt node that could not connect; `stop` stops what is left and
    no process or port of the cluster remains."""
    import signal
    import subprocess
    import time

    from pyhive import hive

    from tests.conftest import CRMWH, ROOT

    problems = check_requirements()
    assert not problems, "Spark cannot run here (the test setup installs it): " + "; ".join(
        problems
    )
    env = {
        **os.environ,
        **{f"CRMWH_PATHS__{k.upper()}": str(tmp_path / k) for k in ("state", "data", "landing")},
        "CRMWH_PATHS__WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
    }
    (tmp_path / "landing").mkdir()  # no files: the job goes straight to dbt
    served = tmp_path / "warehouse.duckdb"  # a served DuckDB warehouse the run must not touch
    con = duckdb.connect(str(served))
    con.execute("create schema marts; create table marts.t as select 42 as v")
    con.close()
    before = hashlib.sha256(served.read_bytes()).hexdigest()
    settings = load_settings(environ=env)
    config = cluster_on_free_ports(cores=1, memory="1g")
    master, master_ui, worker_ui, thrift = (
        config.master_port, config.master_ui_port, config.worker_ui_port, config.thrift_port
    )  # fmt: skip
    env["CRMWH_SPARK__THRIFT_PORT"] = str(thrift)
    home = service_dir(settings)

    # a port already taken: refused before anything starts, naming it
    with socket.socket() as squatter:
        squatter.bind((HOST, thrift))
        squatter.listen()
        with pytest.raises(SparkServiceError, match=f"Thrift server port {thrift} on {HOST}"):
            start(settings, config)
    assert processes_under(home) == []

    log = tmp_path / "run.log"
    try:
        assert start(settings, config).startswith("started")
        assert start(settings, config).startswith("already running")  # twice: harmless
        conn = hive.connect(host=HOST, port=thrift, username="crmwh")
        try:
            cursor = conn.cursor()
            cursor.execute("select 1 + 1 as two, current_user()")
            assert cursor.fetchall() == [(2, "crmwh")]
            # the type ids the cursor reports, which the contract check maps
            # (tests/test_spark_contracts.py, HIVE_TYPE_ID)
            cursor.execute(
                "select cast('a' as string) as varchar, cast(1 as int) as integer, "
                "cast(1 as bigint) as bigint, cast(1 as double) as double, true as boolean, "
                "current_date() as date, cast(current_timestamp() as timestamp) as timestamp, "
                "cast(1 as decimal(18, 2)) as decimal, "
                "cast(current_timestamp() as timestamp_ntz) as timestamp_ntz"
            )
            cursor.fetchall()
            reported = {name: code for name, code, *_ in cursor.description}
            assert reported == {**HIVE_TYPE_ID, "timestamp_ntz": "TIMESTAMP_TYPE"}, reported
        finally:
            conn.close()
        up, text = status(settings, config)
        assert up, text
        assert "answers `select 1`" in text
        assert (home / "conf" / "spark-defaults.conf").is_file()
        assert list((home / "pids").glob("*.pid"))
        assert list((home / "logs").glob("*.out"))
        assert processes_under(home)

        # the run whose server dies
        with log.open("w") as out:
            run = subprocess.Popen([*CRMWH, "run", "--engine", "spark-thrift"], cwd=ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 600
        while log.read_text(errors="replace").count(" START ") < 3:  # dbt is building
            assert run.poll() is None, log.read_text(errors="replace")[-5000:]
            assert time.monotonic() < deadline, "dbt did not start within 10 minutes"
            time.sleep(1)
        pid_file = next((home / "pids").glob("*HiveThriftServer2*.pid"))
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        killed = time.monotonic()
        code = run.wait(timeout=900)
        after_kill = time.monotonic() - killed
    finally:
        if "run" in locals() and run.poll() is None:
            run.kill()
        stopped = stop(settings, config)
    # the killed server left its pid file: stop finds it gone and stops the rest
    assert stopped == ["worker 1", "master"], stopped
    assert stop(settings, config) == []  # twice: harmless
    assert processes_under(home) == []
    assert [p for p in (master, master_ui, worker_ui, thrift) if port_open(p)] == []
    up, text = status(settings, config)
    assert not up
    assert "does not answer" in text

    text = log.read_text(errors="replace")
    summary = text[text.rindex("== failed ==") :] if "== failed ==" in text else text[-5000:]
    print(f"\nthe run ended {after_kill:.0f}s after its Thrift server was killed")
    assert code == 1, summary
    assert f"the server no longer answers `select 1` at 127.0.0.1:{thrift}" in summary, summary
    assert "dbt errors and failed checks of this run follow from it" in summary
    assert len(summary.strip().splitlines()) <= 4, summary  # one cause, not one line a node
    assert "FAILED" in summary
    assert hashlib.sha256(served.read_bytes()).hexdigest() == before
