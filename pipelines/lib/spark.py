"""Build the dbt project on Apache Spark (`crmwh run --engine spark`).

The same models build on Spark from the same Parquet raw layer the DuckDB build reads
(`data/raw/<system>/<entity>/*.parquet`): dbt's `spark` target (dbt_project/profiles.yml)
runs Spark in this machine's JVM (dbt-spark `session` method) and its on-run-start hook
`raw_layer` declares the raw tables over those files. The catalog (a Derby metastore,
usable by one process at a time), the table files and dbt's artifacts live under
`<state>/spark/`, never in the working directory. Needs `uv sync --extra spark` and
Java 17 or 21.

Ingestion and publishing stay DuckDB's: this builds the marts from the raw layer that
`crmwh run` has ingested; it does not ingest and does not touch warehouse.duckdb.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipelines.lib.dbt import build_path, dbt_env, dbt_vars_arg
from pipelines.lib.settings import Settings

SUPPORTED_JAVA = (17, 21)


def spark_dir(settings: Settings) -> Path:
    """Where the Spark catalog, tables and dbt artifacts of the Spark build live."""
    return settings.state_dir / "spark"


def java_major() -> int | None:
    """Major version of the `java` on PATH (pyspark's default), or None without one."""
    java = shutil.which("java")
    if not java:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)', out)
    return int(m.group(1)) if m else None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def check_requirements() -> list[str]:
    """Why a Spark build cannot start here (empty when it can)."""
    problems = []
    for module, extra in (("pyspark", "pyspark"), ("dbt.adapters.spark", "dbt-spark")):
        if not _installed(module):
            problems.append(f"{extra} is not installed: run `uv sync --extra spark`")
    major = java_major()
    if major not in SUPPORTED_JAVA:
        have = f"Java {major}" if major else "no `java` on PATH"
        problems.append(
            f"Spark 4 needs Java 17 or 21 ({have}): apt-get install openjdk-17-jre-headless"
        )
    return problems


def spark_env(settings: Settings) -> dict[str, str]:
    """Environment for `dbt --target spark` (read by dbt_project/profiles.yml)."""
    env = dbt_env(settings, build_path(settings))
    home = spark_dir(settings).resolve()
    env["CRMWH_SPARK_DIR"] = str(home)
    env["CRMWH_DBT_DATA"] = str(settings.data_dir.resolve())
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


def dbt_spark_command(settings: Settings, command: str = "build") -> list[str]:
    home = spark_dir(settings).resolve()
    project = settings.dbt_project_dir
    # dbt's command line through spark_dbt, which keeps the profile's ANSI mode
    return [sys.executable, "-m", "pipelines.lib.spark_dbt", command, "--target", "spark",
            "--project-dir", str(project), "--profiles-dir", str(project),
            "--target-path", str(home / "target"), "--log-path", str(home / "logs"),
            "--vars", dbt_vars_arg(settings)]  # fmt: skip


def run_spark(settings: Settings, extra_args: list[str] | None = None) -> int:
    """`dbt build --target spark` over the raw layer; dbt's exit code (3: catalog busy)."""
    problems = check_requirements()
    if problems:
        for p in problems:
            print(f"crmwh run --engine spark: {p}", file=sys.stderr)
        return 1
    home = spark_dir(settings)
    home.mkdir(parents=True, exist_ok=True)
    cmd = dbt_spark_command(settings) + list(extra_args or [])
    print(f"building on Spark from {settings.data_dir}/raw (catalog and tables in {home})")
    # the Derby catalog admits one process: refuse clearly instead of failing inside Spark
    return _build_locked("spark", cmd, spark_env(settings), home, home / "catalog")


def _build_locked(engine: str, cmd: list[str], env: dict[str, str], cwd: Path, lock: Path) -> int:
    """Run dbt's command holding `lock`; its exit code, 3 when another build holds it."""
    from pipelines.run import RunLockedError, run_lock

    t0 = time.perf_counter()
    try:
        with run_lock(lock):
            done = subprocess.run(cmd, env=env, cwd=cwd)
    except RunLockedError as exc:
        print(f"crmwh run --engine {engine}: {exc}", file=sys.stderr)
        return 3
    status = "built" if done.returncode == 0 else "FAILED"
    print(f"\n{engine} build {status} in {time.perf_counter() - t0:.1f}s")
    return done.returncode


@dataclass(frozen=True)
class ThriftTarget:
    """settings.yml `spark:`: the Spark Thrift server dbt's `spark_thrift` target builds on."""

    host: str
    port: int
    user: str
    raw_location: str  # the raw layer's data folder as the executors read it
    threads: int = 1  # dbt nodes at a time, each in its own server session

    @classmethod
    def from_settings(cls, settings: Settings) -> ThriftTarget:
        spark = settings.section("spark")
        location = str(spark.get("raw_location") or "").strip().rstrip("/")
        return cls(
            host=str(spark.get("thrift_host") or "127.0.0.1"),
            port=int(spark.get("thrift_port") or 10000),
            user=str(spark.get("thrift_user") or "crmwh"),
            raw_location=location or str(settings.data_dir.resolve()),
            threads=max(1, int(spark.get("threads") or 1)),
        )


def thrift_dir(settings: Settings) -> Path:
    """dbt's artifacts of the builds over the Thrift server (the tables are the server's)."""
    return settings.state_dir / "spark-thrift"


def thrift_env(settings: Settings, target: ThriftTarget) -> dict[str, str]:
    """Environment for `dbt --target spark_thrift` (read by dbt_project/profiles.yml)."""
    env = dbt_env(settings, build_path(settings))
    env.update(
        CRMWH_SPARK_THRIFT_HOST=target.host,
        CRMWH_SPARK_THRIFT_PORT=str(target.port),
        CRMWH_SPARK_THRIFT_USER=target.user,
        CRMWH_SPARK_THRIFT_THREADS=str(target.threads),
        CRMWH_DBT_DATA=target.raw_location,
    )
    return env


def thrift_problem(settings: Settings) -> str | None:
    """Why dbt cannot build over the Thrift server of `settings` now (None when it can)."""
    if not (_installed("pyhive") and _installed("dbt.adapters.spark")):
        return "dbt-spark[PyHive] is not installed: run `uv sync --extra spark`"
    from pipelines.lib.spark_service import thrift_select_one

    target = ThriftTarget.from_settings(settings)
    if not thrift_select_one(target.port, target.user, host=target.host):
        return (
            f"no Spark Thrift server answers `select 1` at {target.host}:{target.port} "
            "(settings.yml spark.thrift_host / thrift_port): start the local one with "
            "`crmwh spark start`"
        )
    return None


def thrift_dbt_args(settings: Settings) -> list[str]:
    """dbt's flags that point a build at the Thrift server (profile target, artifacts)."""
    home = thrift_dir(settings).resolve()
    return ["--target", "spark_thrift", "--log-path", str(home / "logs")]


@contextmanager
def thrift_build_lock(settings: Settings) -> Iterator[None]:
    """One build at a time over a server from this state folder: two would replace each
    other's tables. Raises `RunLockedError` when another holds it."""
    from pipelines.run import run_lock

    home = thrift_dir(settings)
    home.mkdir(parents=True, exist_ok=True)
    with run_lock(home / "build"):
        yield


def main(argv: list[str] | None = None) -> int:
    """`python -m pipelines.lib.spark [dbt build flags]`: `crmwh run --engine spark` with
    extra flags for dbt, e.g. `--exclude-resource-type test --exclude-resource-type unit_test`
    to build seeds and models only."""
    from pipelines.lib.settings import load_settings

    return run_spark(load_settings(), sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
