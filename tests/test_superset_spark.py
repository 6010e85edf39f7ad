"""The dashboards bundle for a Spark Thrift server (`crmwh serve --engine spark-thrift`):
the DuckDB SQL of the spec transpiled to Spark SQL, the database registered as that server,
the engine chosen from the flag or settings.yml. That the SQL runs on Spark and gives
DuckDB's results, and that the five dashboards render from the server in a browser, is
tests/test_spark_marts.py (slow: it needs the cluster those tests build on).
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import zipfile
from pathlib import Path

import pytest
import sqlglot
import yaml
from sqlglot import exp

from pipelines.lib import superset
from pipelines.lib.serve import serve_spark_uri
from pipelines.lib.settings import load_settings
from pipelines.lib.superset.spark_sql import spark_dataset, to_spark
from tests.conftest import CRMWH, ROOT

URI = "hive://crmwh@127.0.0.1:10000/marts"
#: DuckDB spellings Spark does not have (or reads differently): none may reach the bundle
DUCKDB_ONLY = ("arg_max(", "arg_min(", "quantile_cont(", "strftime(", "epoch(", "::", "'\\1")


def _dataset_docs() -> dict[str, dict]:
    return {
        p.stem: yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((superset.BUNDLE_DIR / "datasets").rglob("*.yaml"))
    }


def _sql_texts(doc: dict) -> list[str]:
    texts = [doc["sql"]] if doc.get("sql") else []
    texts += [m["expression"] for m in doc.get("metrics") or []]
    texts += [c["expression"] for c in doc.get("columns") or [] if c.get("expression")]
    return texts


def test_rewrites_where_sqlglot_would_change_the_meaning_on_spark() -> None:
    # Spark's percentile_cont takes `within group`; percentile interpolates like DuckDB's
    assert to_spark("quantile_cont(x, 0.9)") == "PERCENTILE(x, 0.9)"
    assert to_spark("median(x) / 60.0") == "PERCENTILE(x, 0.5) / 60.0"
    # a back-reference is $1 in Java's replacement syntax (\1 is a literal 1 on Spark)
    assert to_spark(r"regexp_replace(e, '^(.)[^@]*@', '\1***@')") == (
        "REGEXP_REPLACE(e, '^(.)[^@]*@', '$1***@')"
    )
    # unix_timestamp takes a timestamp, not the interval between two
    assert to_spark("round(epoch(cast(now() as timestamp) - max(t)) / 3600.0, 1)") == (
        "ROUND((UNIX_TIMESTAMP(CAST(NOW() AS TIMESTAMP_NTZ)) - UNIX_TIMESTAMP(MAX(t))) / 3600.0, 1)"
    )
    # 1.0 is a decimal on Spark, and quotients of decimals are rounded to 6 places
    assert to_spark("sum(won) * 1.0 / nullif(count(*), 0)") == (
        "CAST(SUM(won) AS DOUBLE) / NULLIF(COUNT(*), 0)"
    )
    assert to_spark("a * 1.05") == "a * 1.05"
    assert to_spark("arg_max(a, b)") == "MAX_BY(a, b)"
    assert to_spark("strftime(d, '%Y-%m-%d')") == "DATE_FORMAT(d, 'yyyy-MM-dd')"
    with pytest.raises(ValueError, match="one SQL statement"):
        to_spark("select 1; select 2")


def test_every_dataset_transpiles_to_spark_sql() -> None:
    docs = _dataset_docs()
    assert len(docs) == 18
    transpiled = 0
    for name, doc in docs.items():
        original = copy.deepcopy(doc)
        spark = spark_dataset(doc)
        assert doc == original  # the DuckDB dataset is left as it was
        for before, after in zip(_sql_texts(doc), _sql_texts(spark), strict=True):
            lowered = after.lower()
            assert not [s for s in DUCKDB_ONLY if s in lowered], (name, after)
            # Spark itself runs it in the slow test; here sqlglot's Spark dialect reads it,
            # and Superset's round trip through the Hive dialect (its dialect of a
            # `hive://` database) keeps the functions Spark knows
            assert isinstance(sqlglot.parse_one(after, read="spark"), exp.Expression)
            superset_sql = sqlglot.transpile(after, read="hive", write="hive")[0]
            assert "PERCENTILE_CONT(" not in superset_sql.upper(), (name, superset_sql)
            transpiled += before != after
        if doc.get("sql"):
            assert spark["sql"].endswith("\n") and "\n" in spark["sql"].strip()
            # the same tables are read
            assert superset.dataset_tables(spark) == superset.dataset_tables(doc), name
    assert transpiled >= 20


def test_the_spark_bundle_registers_the_thrift_server_only(tmp_path: Path) -> None:
    out = superset.build_bundle_zip(
        tmp_path / "absent.duckdb", tmp_path / "b.zip", language="en", spark_uri=URI
    )
    with zipfile.ZipFile(out) as zf:
        docs = {
            n.split("/", 1)[1]: yaml.safe_load(zf.read(n))
            for n in zf.namelist()
            if n.endswith(".yaml")
        }
    databases = [d for rel, d in docs.items() if rel.startswith("databases/")]
    assert [d["database_name"] for d in databases] == ["CRM warehouse"]
    db = databases[0]
    assert db["sqlalchemy_uri"] == URI
    assert "connect_args" not in db["extra"]["engine_params"]
    assert db["allow_dml"] is False and db["allow_file_upload"] is False
    datasets = [d for rel, d in docs.items() if rel.startswith("datasets/")]
    assert len(datasets) == 18
    assert all(d["database_uuid"] == db["uuid"] and d["schema"] == "marts" for d in datasets)
    sources = _dataset_docs()  # (the spec's texts are English)
    assert all(
        _sql_texts(d) == _sql_texts(spark_dataset(sources[d["table_name"]])) for d in datasets
    )
    # the DuckDB bundle is unchanged by the engine option
    duck = superset.build_bundle_zip(tmp_path / "w.duckdb", tmp_path / "d.zip")
    with zipfile.ZipFile(duck) as zf:
        names = [n for n in zf.namelist() if "/databases/" in n]
        uris = sorted(yaml.safe_load(zf.read(n))["sqlalchemy_uri"] for n in names)
    assert uris == [
        f"duckdb:///{tmp_path / 'w.duckdb'}",
        f"duckdb:///{tmp_path / 'w.masked.duckdb'}",
    ]


def test_thrift_uri_quotes_the_user() -> None:
    assert superset.thrift_uri("10.0.0.5", 10001, "etl@corp") == (
        "hive://etl%40corp@10.0.0.5:10001/marts"
    )


def _settings(tmp_path: Path, **env: str):
    return load_settings(environ={**os.environ, "CRMWH_PATHS__STATE": str(tmp_path), **env})


def test_serve_engine_from_flag_or_settings(tmp_path: Path) -> None:
    with socket.socket() as listener:  # a port something listens on, as the server would
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        env = {"CRMWH_SPARK__THRIFT_PORT": str(port), "CRMWH_SPARK__THRIFT_USER": "bi"}
        settings = _settings(tmp_path, **env)
        assert serve_spark_uri(settings) is None  # settings.yml dbt.engine: duckdb
        assert serve_spark_uri(settings, "duckdb") is None
        assert serve_spark_uri(settings, "spark-thrift") == f"hive://bi@127.0.0.1:{port}/marts"
        chosen = _settings(tmp_path, CRMWH_DBT__ENGINE="spark-thrift", **env)
        assert serve_spark_uri(chosen) == f"hive://bi@127.0.0.1:{port}/marts"
    with pytest.raises(OSError, match=f"no Spark Thrift server listens at 127.0.0.1:{port}"):
        serve_spark_uri(settings, "spark-thrift")
    with pytest.raises(ValueError, match="not one of duckdb, spark-thrift"):
        serve_spark_uri(settings, "spark")


def test_crmwh_serve_refuses_when_no_thrift_server_answers(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    env = {**os.environ, "CRMWH_PATHS__STATE": str(tmp_path), "CRMWH_SPARK__THRIFT_PORT": str(port)}
    done = subprocess.run(
        [*CRMWH, "serve", "--engine", "spark-thrift", "--no-dagster", "--port", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"no Spark Thrift server listens at 127.0.0.1:{port}" in done.stderr
