"""Superset: the dashboards bundle is consistent, and a real server serves it.

The server test runs the real thing end to end (own venv, ``prepare``, gunicorn, HTTP
API) on a warehouse built by the real pipeline, because the ways this breaks - a
dependency that no longer starts, a chart whose saved query no longer matches the marts,
an import that duplicates objects - only show up there.
"""

from __future__ import annotations

import http.cookiejar
import json
import runpy
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.lib import superset

DASHBOARD_TITLE = "Sales funnel"


# --------------------------------------------------------------------------- bundle


def test_bundle_is_valid() -> None:
    assert superset.validate_bundle(superset.BUNDLE_DIR) == []


def _copy_bundle(tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(superset.BUNDLE_DIR, copy)
    return copy


def _edit(path: Path, change: Any) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def test_validate_bundle_reports_broken_uuids(tmp_path: Path) -> None:
    bundle = _copy_bundle(tmp_path)
    missing = "00000000-0000-4000-8000-000000000000"
    chart = bundle / "charts" / "Won_deals.yaml"
    _edit(chart, lambda d: d.update(dataset_uuid=missing))

    def break_position(doc: dict) -> None:
        node = next(
            n for n in doc["position"].values() if isinstance(n, dict) and n.get("type") == "CHART"
        )
        node["meta"]["uuid"] = missing

    _edit(bundle / "dashboards" / "Sales_funnel.yaml", break_position)

    problems = superset.validate_bundle(bundle)
    assert any("charts/Won_deals.yaml" in p and missing in p for p in problems), problems
    assert any("dashboards/Sales_funnel.yaml" in p and missing in p for p in problems), problems


def test_validate_bundle_rejects_tables_outside_the_marts(tmp_path: Path) -> None:
    bundle = _copy_bundle(tmp_path)
    dataset = bundle / "datasets" / "crm_warehouse" / "fct_deal.yaml"
    _edit(dataset, lambda d: d.update(table_name="stg_bitrix__deals"))
    problems = superset.validate_bundle(bundle)
    assert any("stg_bitrix__deals" in p for p in problems), problems
    # and a narrower allow-list turns the untouched datasets into problems too
    narrow = superset.validate_bundle(superset.BUNDLE_DIR, allowed_tables={"fct_deal"})
    assert any("mart_funnel_velocity" in p for p in narrow), narrow


def test_bundle_zip_points_at_the_warehouse_read_only(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh" / "warehouse.duckdb"
    out = superset.build_bundle_zip(warehouse, tmp_path / "bundle.zip")
    with zipfile.ZipFile(out) as zf:
        dbs = [n for n in zf.namelist() if "/databases/" in n]
        assert len(dbs) == 1
        db = yaml.safe_load(zf.read(dbs[0]))
    assert db["sqlalchemy_uri"] == f"duckdb:///{warehouse.resolve()}"
    connect_args = db["extra"]["engine_params"]["connect_args"]
    assert connect_args == {"read_only": True, "config": {"enable_external_access": False}}


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "key", [None, "", "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET", "thisISaSECRET_1234", "short"]
)
def test_config_refuses_missing_or_default_secret_key(tmp_path, monkeypatch, key) -> None:
    monkeypatch.setenv("CRMWH_SUPERSET_STATE", str(tmp_path))
    if key is not None:
        (tmp_path / "secret_key").write_text(key)
    with pytest.raises(RuntimeError, match="Refusing to start"):
        runpy.run_path(str(superset.CONFIG_FILE))


def test_config_reads_the_generated_secret_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRMWH_SUPERSET_STATE", str(tmp_path))
    superset._ensure_secret_key(tmp_path)
    config = runpy.run_path(str(superset.CONFIG_FILE))
    assert config["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
    assert config["SQLALCHEMY_DATABASE_URI"].startswith(f"sqlite:///{tmp_path.resolve()}/")
    assert config["TALISMAN_ENABLED"] is True


# --------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Api:
    """A tiny client for Superset's REST API: JWT login, cookie jar for CSRF."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""
        self.csrf = ""
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.base + path, method=method)
        if body is not None:
            req.data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if self.csrf and method != "GET":
            req.add_header("X-CSRFToken", self.csrf)
            req.add_header("Referer", self.base + "/")
        try:
            with self.opener.open(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode("utf-8", "replace")

    def login(self, username: str, password: str) -> None:
        status, body = self.call(
            "POST",
            "/api/v1/security/login",
            {"username": username, "password": password, "provider": "db", "refresh": False},
        )
        assert status == 200, body
        self.token = body["access_token"]
        status, body = self.call("GET", "/api/v1/security/csrf_token/")
        assert status == 200, body
        self.csrf = body["result"]


def _rison_eq(column: str, value: str) -> str:
    return urllib.parse.quote(f"(filters:!((col:{column},opr:eq,value:'{value}')),page_size:100)")


def test_superset_serves_the_sales_funnel(built_warehouse: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    t0 = time.monotonic()
    creds = superset.prepare(built_warehouse, state)
    # a second prepare (as on every `crmwh serve`) must update in place, not duplicate
    again = superset.prepare(built_warehouse, state)
    assert (again.username, again.password) == (creds.username, creds.password)
    if creds.generated:
        assert creds.password_file is not None
        assert creds.password_file.stat().st_mode & 0o777 == 0o600
    key_file = state / "superset" / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600

    port = _free_port()
    t1 = time.monotonic()
    proc = superset.start(built_warehouse, state, port=port)
    started = time.monotonic()
    try:
        base = f"http://127.0.0.1:{port}"
        print(f"prepare x2 {t1 - t0:.1f}s, start {started - t1:.1f}s")

        # security headers are set by Talisman on every page
        with urllib.request.urlopen(f"{base}/login/", timeout=30) as resp:
            headers = resp.headers
        assert "default-src 'self'" in headers.get("Content-Security-Policy", "")
        assert headers.get("X-Frame-Options") == "DENY"

        api = Api(base)
        status, _ = api.call("GET", "/api/v1/dashboard/")
        assert status == 401
        api.login(creds.username, creds.password)

        status, body = api.call(
            "GET", f"/api/v1/dashboard/?q={_rison_eq('dashboard_title', DASHBOARD_TITLE)}"
        )
        assert status == 200, body
        assert [d["dashboard_title"] for d in body["result"]] == [DASHBOARD_TITLE]
        dashboard_id = body["result"][0]["id"]
        status, me = api.call("GET", "/api/v1/me/")
        assert status == 200, me
        assert [o["id"] for o in body["result"][0]["owners"]] == [me["result"]["id"]]

        status, body = api.call("GET", f"/api/v1/dashboard/{dashboard_id}/charts")
        assert status == 200, body
        charts = body["result"]
        bundle_charts = list((superset.BUNDLE_DIR / "charts").glob("*.yaml"))
        assert len(charts) == len(bundle_charts)
        status, body = api.call("GET", "/api/v1/chart/?q=(page_size:100)")
        assert body["count"] == len(bundle_charts), "re-import duplicated charts"

        timings = {}
        for chart in charts:
            t = time.monotonic()
            status, body = api.call("GET", f"/api/v1/chart/{chart['id']}/data/")
            timings[chart["slice_name"]] = time.monotonic() - t
            assert status == 200, (chart["slice_name"], body)
            rows = body["result"][0]["rowcount"]
            assert rows > 0, f"{chart['slice_name']}: no rows"
        print("chart data latency:", {k: f"{v:.2f}s" for k, v in timings.items()})

        # concurrent, uncached queries (as a dashboard load makes them): each thread must
        # get its own DuckDB connection, so all succeed with the same row counts
        def fetch(chart_id: int) -> tuple[int, Any]:
            return api.call("GET", f"/api/v1/chart/{chart_id}/data/?force=true")

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(fetch, [c["id"] for c in charts] * 2))
        assert all(status == 200 for status, _ in results), results
        assert all(body["result"][0]["rowcount"] > 0 for _, body in results)

        # SQL Lab reads the marts but cannot write, nor read files on the server
        status, body = api.call(
            "GET", f"/api/v1/database/?q={_rison_eq('database_name', 'CRM warehouse')}"
        )
        database_id = body["result"][0]["id"]

        def sql(statement: str) -> tuple[int, Any]:
            return api.call(
                "POST",
                "/api/v1/sqllab/execute/",
                {
                    "database_id": database_id,
                    "sql": statement,
                    "runAsync": False,
                    "schema": "marts",
                },
            )

        status, body = sql("select count(*) as n from marts.fct_deal")
        assert status == 200, body
        assert body["data"][0]["n"] > 0
        status, body = sql("select * from read_csv('/etc/passwd')")
        assert status != 200 and "disabled by configuration" in json.dumps(body), body
        status, body = sql("create table marts.x as select 1 as a")
        assert status != 200 and "DML_NOT_ALLOWED_ERROR" in json.dumps(body), body
    finally:
        superset.stop(proc)
    assert proc.poll() is not None
