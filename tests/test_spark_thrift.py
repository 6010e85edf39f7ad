"""`crmwh run --engine spark-thrift`: what it connects to, and what it does without a server.

The build itself over a real Thrift server (the Dagster job, every mart equal to DuckDB's)
is in tests/test_spark_marts.py; here, the fast part: the settings it reads, the job it
assembles, and its refusal, naming the address, when no server answers.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.lib.settings import load_settings
from pipelines.lib.spark import ThriftTarget, thrift_env
from tests.conftest import CRMWH, ROOT

pytest.importorskip("pyhive", reason="the spark extra is not installed (make setup-spark)")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_target_comes_from_settings(tmp_path: Path):
    env = {**os.environ, "CRMWH_PATHS__DATA": str(tmp_path / "data")}
    target = ThriftTarget.from_settings(load_settings(environ=env))
    # the shipped defaults: the local cluster of `crmwh spark start`, the data folder
    assert target == ThriftTarget("127.0.0.1", 10000, "crmwh", str(tmp_path / "data"))
    env.update(
        CRMWH_SPARK__THRIFT_HOST="spark-thrift.internal",
        CRMWH_SPARK__THRIFT_PORT="10001",
        CRMWH_SPARK__THRIFT_USER="dbt",
        CRMWH_SPARK__RAW_LOCATION="s3a://bucket/crm/data/",
        CRMWH_SPARK__THREADS="8",
    )
    settings = load_settings(environ=env)
    target = ThriftTarget.from_settings(settings)
    assert target == ThriftTarget(
        "spark-thrift.internal", 10001, "dbt", "s3a://bucket/crm/data", threads=8
    )
    # what dbt's profile reads (dbt_project/profiles.yml, target spark_thrift)
    dbt_env = thrift_env(settings, target)
    assert dbt_env["CRMWH_SPARK_THRIFT_HOST"] == "spark-thrift.internal"
    assert dbt_env["CRMWH_SPARK_THRIFT_PORT"] == "10001"
    assert dbt_env["CRMWH_DBT_DATA"] == "s3a://bucket/crm/data"
    assert dbt_env["CRMWH_SPARK_THRIFT_THREADS"] == "8"
    profile = yaml.safe_load((ROOT / "dbt_project" / "profiles.yml").read_text())
    output = profile["crm_warehouse"]["outputs"]["spark_thrift"]
    assert output["method"] == "thrift"
    for key, variable in (("host", "HOST"), ("port", "PORT"), ("user", "USER"),
                          ("threads", "THREADS")):  # fmt: skip
        assert f"CRMWH_SPARK_THRIFT_{variable}" in str(output[key]), output


def test_the_engine_is_a_setting_and_an_unknown_one_is_named(tmp_path: Path):
    assert load_settings(environ={}).dbt_engine == "duckdb"
    env = {"CRMWH_DBT__ENGINE": "Spark-Thrift "}
    assert load_settings(environ=env).dbt_engine == "spark-thrift"
    with pytest.raises(ValueError, match=r"dbt.engine 'snowflake' is not one of duckdb, spark"):
        _ = load_settings(environ={"CRMWH_DBT__ENGINE": "snowflake"}).dbt_engine


def test_the_job_on_thrift_keeps_its_steps_and_drops_the_duckdb_only_checks():
    """Same assets (ingest, dbt, publish) on both engines; the staging suites, which read
    the DuckDB build, are left out on the Thrift engine (dbt's data tests run there)."""
    from pipelines.definitions import JOB_NAME, build_definitions
    from pipelines.lib.quality.rules import load_config, staging_suites

    jobs = {}
    for engine in ("duckdb", "spark-thrift"):
        defs = build_definitions(load_settings(environ={"CRMWH_DBT__ENGINE": engine}))
        job = defs.resolve_job_def(JOB_NAME)
        jobs[engine] = (
            set(job.asset_layer.executable_asset_keys),
            set(defs.resolve_asset_graph().asset_check_keys),
        )
    (duck_assets, duck_checks), (thrift_assets, thrift_checks) = jobs.values()
    assert thrift_assets == duck_assets
    assert any(k.to_user_string() == "warehouse/published" for k in thrift_assets)
    assert thrift_checks < duck_checks
    dropped = duck_checks - thrift_checks
    settings = load_settings(environ={})
    suites = staging_suites(
        load_config(settings.quality_file), {k.asset_key.path[-1] for k in dropped}
    )
    expected = {(s.table, r.name) for s in suites for r in s.rules}
    assert {(k.asset_key.path[-1], k.name) for k in dropped} == expected
    assert all(k.asset_key.path[0] == "staging" for k in dropped)


def test_no_server_is_a_clear_error_naming_the_address(tmp_path: Path):
    port = _closed_port()
    env = {
        **os.environ,
        "CRMWH_PATHS__STATE": str(tmp_path / "state"),
        "CRMWH_PATHS__DATA": str(tmp_path / "data"),
        "CRMWH_SPARK__THRIFT_PORT": str(port),
    }
    done = subprocess.run(
        [*CRMWH, "run", "--engine", "spark-thrift"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"no Spark Thrift server answers `select 1` at 127.0.0.1:{port}" in done.stderr
    assert "crmwh spark start" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state" / "spark-thrift").exists()  # nothing started


def test_backfill_without_a_server_is_the_same_clear_error(tmp_path: Path):
    port = _closed_port()
    env = {
        **os.environ,
        "CRMWH_PATHS__STATE": str(tmp_path / "state"),
        "CRMWH_PATHS__DATA": str(tmp_path / "data"),
        "CRMWH_PATHS__LANDING": str(tmp_path / "landing"),
        "CRMWH_SPARK__THRIFT_PORT": str(port),
    }
    (tmp_path / "landing").mkdir()
    done = subprocess.run(
        [*CRMWH, "backfill", "--start", "2026-11-01", "--end", "2026-11-02",
         "--engine", "spark-thrift"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"crmwh backfill: no Spark Thrift server answers `select 1` at 127.0.0.1:{port}" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr
