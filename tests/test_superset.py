"""Superset: the bundle and config checks, and a real server serving the five dashboards.

The server tests run the real thing end to end (own venv, ``prepare``, gunicorn, HTTP API,
a browser) on a warehouse built by the real pipeline, because the ways this breaks - a
dependency that no longer starts, a chart whose saved query no longer matches the marts,
an import that duplicates objects, a role that sees too much - only show up there. One
server serves the whole module (preparing one costs a minute or two).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import runpy
import shutil
import socket
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from pipelines.lib import superset
from tests.conftest import CRMWH, ROOT, Built

DASHBOARD_SLUGS = {"executive", "marketing", "sales-funnel", "finance", "data-quality"}
BROWSER_DIR = ROOT / "tests" / "browser"


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
    chart = next((bundle / "charts").glob("Won_deals_*.yaml"))
    _edit(chart, lambda d: d.update(dataset_uuid=missing))

    def break_position(doc: dict) -> None:
        node = next(
            n for n in doc["position"].values() if isinstance(n, dict) and n.get("type") == "CHART"
        )
        node["meta"]["uuid"] = missing

    _edit(bundle / "dashboards" / "Sales_funnel_and_managers.yaml", break_position)

    problems = superset.validate_bundle(bundle)
    assert any(chart.name in p and missing in p for p in problems), problems
    assert any("Sales_funnel_and_managers.yaml" in p and missing in p for p in problems), problems


def test_validate_bundle_rejects_tables_outside_the_marts(tmp_path: Path) -> None:
    bundle = _copy_bundle(tmp_path)
    dataset = bundle / "datasets" / "crm_warehouse" / "mart_dso.yaml"
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


def test_config_states_session_lifetime_and_access_rules(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRMWH_SUPERSET_STATE", str(tmp_path))
    superset._ensure_secret_key(tmp_path)
    config = runpy.run_path(str(superset.CONFIG_FILE))
    assert config["PERMANENT_SESSION_LIFETIME"].total_seconds() == 8 * 3600
    assert config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() == 15 * 60
    assert config["SESSION_COOKIE_HTTPONLY"] and config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert callable(config["FLASK_APP_MUTATOR"])  # makes sessions permanent (see config)
    flags = config["FEATURE_FLAGS"]
    assert flags["DASHBOARD_RBAC"] is True
    assert flags["ALLOW_ADHOC_SUBQUERY"] is False
    assert flags["ENABLE_TEMPLATE_PROCESSING"] is False


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
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.last_headers: Any = None

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
            with self.opener.open(req, timeout=120) as resp:
                self.last_headers = resp.headers
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            self.last_headers = exc.headers
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

    def dashboards(self) -> list[dict[str, Any]]:
        status, body = self.call("GET", "/api/v1/dashboard/?q=(page_size:100)")
        assert status == 200, body
        return body["result"]

    def charts_of(self, dashboard_id: int) -> list[dict[str, Any]]:
        status, body = self.call("GET", f"/api/v1/dashboard/{dashboard_id}/charts")
        assert status == 200, body
        return body["result"]

    def dataset_id(self, table_name: str) -> int:
        q = _rison_eq("table_name", table_name)
        status, body = self.call("GET", f"/api/v1/dataset/?q={q}")
        assert status == 200 and body["result"], (table_name, body)
        return body["result"][0]["id"]

    def query(
        self, dataset_id: int, columns: list[str], metric_sql: str | None = "COUNT(*)"
    ) -> tuple[int, Any]:
        """Chart data for an ad-hoc query on a dataset (as Explore would send it)."""
        metrics = (
            [{"expressionType": "SQL", "sqlExpression": metric_sql, "label": "n"}]
            if metric_sql
            else []
        )
        return self.call(
            "POST",
            "/api/v1/chart/data",
            {
                "datasource": {"id": dataset_id, "type": "table"},
                "force": True,
                "queries": [{"columns": columns, "metrics": metrics, "row_limit": 10000}],
                "result_format": "json",
                "result_type": "full",
            },
        )


def _rison_eq(column: str, value: str) -> str:
    return urllib.parse.quote(f"(filters:!((col:{column},opr:eq,value:'{value}')),page_size:100)")


@dataclass
class Served:
    base: str
    creds: superset.SupersetCredentials
    state: Path
    warehouse: Path
    proc: subprocess.Popen
    demo: Built
    #: bundle dataset table name -> mart tables the warehouse does not have (yet)
    missing: dict[str, list[str]] = field(default_factory=dict)
    chart_dataset: dict[str, str] = field(default_factory=dict)  # chart title -> dataset

    def admin(self) -> Api:
        api = Api(self.base)
        api.login(self.creds.username, self.creds.password)
        return api

    def not_built(self, chart_title: str) -> list[str]:
        return self.missing.get(self.chart_dataset.get(chart_title, ""), [])


def _bundle_maps() -> dict[str, str]:
    def load(kind: str) -> list[dict[str, Any]]:
        return [
            yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in (superset.BUNDLE_DIR / kind).rglob("*.yaml")
        ]

    by_uuid = {d["uuid"]: d["table_name"] for d in load("datasets")}
    return {d["slice_name"]: by_uuid[d["dataset_uuid"]] for d in load("charts")}


@pytest.fixture(scope="module")
def served(demo_build: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Superset prepared twice (as every `crmwh serve` does) and started on a copy of the
    demo warehouse, so the refresh test can publish over it without touching other tests."""
    work = tmp_path_factory.mktemp("superset")
    warehouse = work / "warehouse.duckdb"
    shutil.copy2(demo_build.warehouse, warehouse)
    state = work / "state"
    t0 = time.monotonic()
    creds = superset.prepare(warehouse, state)
    again = superset.prepare(warehouse, state)
    assert (again.username, again.password) == (creds.username, creds.password)
    port = _free_port()
    t1 = time.monotonic()
    proc = superset.start(warehouse, state, port=port)
    print(f"prepare x2 {t1 - t0:.1f}s, start {time.monotonic() - t1:.1f}s")
    _problems, missing = superset.check_bundle_against_warehouse(warehouse)
    missing_by_table = {Path(rel).stem: tables for rel, tables in missing.items()}
    try:
        yield Served(
            f"http://127.0.0.1:{port}",
            creds,
            state,
            warehouse,
            proc,
            demo_build,
            missing_by_table,
            _bundle_maps(),
        )
    finally:
        superset.stop(proc)
    assert proc.poll() is not None


def test_prepare_is_idempotent_and_keeps_secrets_private(served: Served) -> None:
    if served.creds.generated:
        assert served.creds.password_file is not None
        assert served.creds.password_file.stat().st_mode & 0o777 == 0o600
    key_file = served.state / "superset" / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600

    api = Api(served.base)
    status, _ = api.call("GET", "/api/v1/dashboard/")
    assert status == 401
    api = served.admin()
    dashboards = api.dashboards()
    assert {d["slug"] for d in dashboards} == DASHBOARD_SLUGS  # imported once, not twice
    status, me = api.call("GET", "/api/v1/me/")
    assert all([o["id"] for o in d["owners"]] == [me["result"]["id"]] for d in dashboards)
    bundle_charts = list((superset.BUNDLE_DIR / "charts").glob("*.yaml"))
    status, body = api.call("GET", "/api/v1/chart/?q=(page_size:100)")
    assert body["count"] == len(bundle_charts), "re-import duplicated charts"


def test_security_headers_and_session_cookie(served: Served) -> None:
    with urllib.request.urlopen(f"{served.base}/login/", timeout=30) as resp:
        headers = resp.headers
    csp = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers.get("X-Frame-Options") == "DENY"
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Referrer-Policy") == "same-origin"
    assert "camera=()" in headers.get("Permissions-Policy", "")

    api = served.admin()  # the CSRF call opens a (cookie) session
    cookies = api.last_headers.get_all("Set-Cookie") or []
    session = next(c for c in cookies if c.startswith("crmwh_session="))
    attrs = {a.strip().split("=")[0].lower(): a for a in session.split(";")}
    assert "httponly" in attrs and "samesite" in attrs and "Lax" in attrs["samesite"]
    expires = attrs["expires"].split("=", 1)[1]
    left = time.mktime(time.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT")) - time.mktime(
        time.gmtime()
    )
    assert 7.5 * 3600 < left <= 8 * 3600 + 60, f"session cookie expires in {left / 3600:.2f}h"


def _all_charts(api: Api) -> list[dict[str, Any]]:
    charts: dict[int, dict[str, Any]] = {}
    for d in api.dashboards():
        for chart in api.charts_of(d["id"]):
            charts.setdefault(chart["id"], {**chart, "dashboard": d["dashboard_title"]})
    return list(charts.values())


def test_every_chart_of_every_dashboard_returns_rows(served: Served) -> None:
    api = served.admin()
    charts = _all_charts(api)
    assert len(charts) == len(list((superset.BUNDLE_DIR / "charts").glob("*.yaml")))
    latencies: list[float] = []
    not_built: dict[str, list[str]] = {}
    failures = []
    for rnd in range(3):  # uncached rounds for the latency figures
        for chart in charts:
            t = time.monotonic()
            status, body = api.call("GET", f"/api/v1/chart/{chart['id']}/data/?force=true")
            elapsed = time.monotonic() - t
            title = chart["slice_name"]
            if absent := served.not_built(title):
                assert status != 200 and "does not exist" in json.dumps(body), (title, body)
                not_built[title] = absent
                continue
            latencies.append(elapsed)
            if status != 200:
                failures.append((title, status, str(body)[:300]))
            elif rnd == 0 and body["result"][0]["rowcount"] <= 0:
                failures.append((title, "no rows", ""))
    assert not failures, failures
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print(
        f"chart data, uncached, {len(latencies)} calls over {len(charts) - len(not_built)} "
        f"charts: p50 {statistics.median(latencies):.2f}s p95 {p95:.2f}s "
        f"max {latencies[-1]:.2f}s"
    )
    if not_built:
        pytest.skip(f"{len(not_built)} charts read marts not built yet: {not_built}")


def test_concurrent_uncached_queries_do_not_share_a_connection(served: Served) -> None:
    api = served.admin()
    charts = [c for c in _all_charts(api) if not served.not_built(c["slice_name"])][:8]

    def fetch(chart_id: int) -> tuple[int, Any]:
        return api.call("GET", f"/api/v1/chart/{chart_id}/data/?force=true")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(fetch, [c["id"] for c in charts] * 2))
    assert all(status == 200 for status, _ in results), results
    assert all(body["result"][0]["rowcount"] > 0 for _, body in results)


def _sql(api: Api, statement: str) -> tuple[int, Any]:
    status, body = api.call(
        "GET", f"/api/v1/database/?q={_rison_eq('database_name', 'CRM warehouse')}"
    )
    database_id = body["result"][0]["id"] if status == 200 and body["result"] else 1
    return api.call(
        "POST",
        "/api/v1/sqllab/execute/",
        {"database_id": database_id, "sql": statement, "runAsync": False, "schema": "marts"},
    )


def test_sql_lab_reads_the_marts_but_cannot_write_or_read_files(served: Served) -> None:
    api = served.admin()
    status, body = _sql(api, "select count(*) as n from marts.fct_deal")
    assert status == 200, body
    assert body["data"][0]["n"] > 0
    status, body = _sql(api, "select * from read_csv('/etc/passwd')")
    assert status != 200 and "disabled by configuration" in json.dumps(body), body
    status, body = _sql(api, "create table marts.x as select 1 as a")
    assert status != 200 and "DML_NOT_ALLOWED_ERROR" in json.dumps(body), body


# --------------------------------------------------------------------------- roles


def _busiest_manager(warehouse: Path) -> tuple[str, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "select manager_id, count(*) from marts.fct_deal where manager_id is not null "
            "group by 1 order by 2 desc limit 1"
        ).fetchall()[0]
    finally:
        con.close()


def test_roles_see_what_they_should_and_nothing_more(served: Served) -> None:
    manager_id, manager_deals = _busiest_manager(served.warehouse)
    users = {
        "t_analyst": (["Analyst"], None),
        "t_exec": (["Executive"], None),
        "t_finance": (["Finance"], None),
        "t_manager": (["Manager"], manager_id),
        "t_nobody": (["Manager"], None),  # a Manager without a manager id: deny by default
    }
    password = "Role-Test-Pass-1"
    for name, (roles, mid) in users.items():
        superset.ensure_user(served.state, name, password, roles, manager_id=mid)
    # idempotent: running it again changes nothing and does not fail
    superset.ensure_user(served.state, "t_manager", password, ["Manager"], manager_id=manager_id)
    apis = {}
    for name in users:
        apis[name] = Api(served.base)
        apis[name].login(name, password)
    admin = served.admin()
    ds = {t: admin.dataset_id(t) for t in ("deals", "customers", "customer_contacts", "invoices")}

    # dashboards each role is given (DASHBOARD_RBAC), and no others
    slugs = {n: {d["slug"] for d in api.dashboards()} for n, api in apis.items()}
    assert slugs["t_exec"] == slugs["t_finance"] == slugs["t_analyst"] == DASHBOARD_SLUGS
    assert slugs["t_manager"] == {"executive", "sales-funnel", "data-quality"}
    status, _ = apis["t_manager"].call("GET", "/api/v1/dashboard/finance")
    assert status in (403, 404)

    # every chart of every dashboard a role sees renders for it
    for name, api in apis.items():
        for chart in _all_charts(api):
            if served.not_built(chart["slice_name"]):
                continue
            status, body = api.call("GET", f"/api/v1/chart/{chart['id']}/data/")
            assert status == 200, (name, chart["slice_name"], body)

    # SQL Lab: Analyst only, and only on the marts
    status, body = _sql(apis["t_analyst"], "select count(*) as n from marts.fct_deal")
    assert status == 200 and body["data"][0]["n"] > 0, body
    status, body = _sql(apis["t_analyst"], "select count(*) as n from raw.file_delivery")
    assert status != 200, body
    for name in ("t_exec", "t_finance", "t_manager"):
        status, body = _sql(apis[name], "select 1 as x")
        assert status == 403, (name, status, body)
    # Explore: not for the dashboards-only roles
    status, _ = apis["t_exec"].call("GET", "/api/v1/explore/?datasource_type=table&datasource_id=1")
    assert status == 403
    status, _ = apis["t_finance"].call(
        "GET", f"/api/v1/explore/?datasource_type=table&datasource_id={ds['deals']}"
    )
    assert status == 200

    # Row Level Security: a manager sees their own deals, customers and invoices only
    status, body = apis["t_manager"].query(ds["deals"], ["manager_id"])
    assert status == 200, body
    rows = body["result"][0]["data"]
    assert [(r["manager_id"], r["n"]) for r in rows] == [(manager_id, manager_deals)]
    for table in ("customers", "invoices"):
        status, body = apis["t_manager"].query(ds[table], ["manager_id"])
        assert status == 200, body
        assert {r["manager_id"] for r in body["result"][0]["data"]} <= {manager_id}, table
    status, body = apis["t_exec"].query(ds["deals"], ["manager_id"])
    assert len(body["result"][0]["data"]) > 1  # exempt roles see every manager
    status, body = apis["t_nobody"].query(ds["deals"], [])
    assert status == 200 and body["result"][0]["data"][0]["n"] == 0, body

    # contacts: raw for Finance, masked for everyone else, unreachable through the raw set
    status, body = apis["t_finance"].query(ds["customer_contacts"], ["primary_phone"], None)
    assert status == 200, body
    phones = [r["primary_phone"] for r in body["result"][0]["data"] if r["primary_phone"]]
    assert phones and all(p.startswith("+") and "*" not in p for p in phones)
    for name in ("t_exec", "t_manager", "t_nobody"):
        status, body = apis[name].query(ds["customer_contacts"], ["primary_phone"], None)
        assert status in (403, 404), (name, status, body)
    status, body = apis["t_exec"].query(ds["customers"], ["phone_masked", "email_masked"], None)
    assert status == 200, body
    masked = [r for r in body["result"][0]["data"] if r["phone_masked"]]
    assert masked and all("*" in r["phone_masked"] for r in masked)
    assert all("***@" in r["email_masked"] for r in masked if r["email_masked"])
    # an ad-hoc expression cannot reach the raw table through a subquery
    status, body = apis["t_exec"].query(
        ds["customers"], [], "max((select primary_phone from marts.dim_customer limit 1))"
    )
    assert status != 200, body


# --------------------------------------------------------------------------- refresh


def test_zero_chart_errors_while_a_refresh_publishes(served: Served, tmp_path: Path) -> None:
    """`crmwh run` builds a new warehouse and swaps it over the served file while clients
    fetch chart data in a loop: not one chart request may fail."""
    api = served.admin()
    charts = [c for c in _all_charts(api) if not served.not_built(c["slice_name"])]
    data = tmp_path / "data"
    shutil.copytree(served.demo.data, data)  # the manifest: a rerun, not a first load
    env = dict(
        served.demo.env, CRMWH_PATHS__DATA=str(data), CRMWH_PATHS__STATE=str(tmp_path / "state")
    )
    inode = served.warehouse.stat().st_ino
    log_path = tmp_path / "run.log"
    log = open(log_path, "w", encoding="utf-8")  # a pipe would fill up and block the run
    run = subprocess.Popen(
        [
            *CRMWH,
            "run",
            "--landing",
            str(served.demo.landing),
            "--warehouse",
            str(served.warehouse),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    results: list[tuple[str, int, str]] = []
    swaps: list[float] = []
    stop = threading.Event()

    def client() -> None:
        mine = Api(served.base)
        mine.login(served.creds.username, served.creds.password)
        while not stop.is_set():
            for chart in charts:
                status, body = mine.call("GET", f"/api/v1/chart/{chart['id']}/data/?force=true")
                ok = status == 200 and body["result"][0]["rowcount"] > 0
                results.append((chart["slice_name"], status, "" if ok else str(body)[:300]))
                if stop.is_set():
                    return

    threads = [threading.Thread(target=client, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 1200
    try:
        while run.poll() is None and time.monotonic() < deadline:
            if served.warehouse.stat().st_ino != inode and not swaps:
                swaps.append(time.monotonic())
            time.sleep(0.2)
        if served.warehouse.stat().st_ino != inode and not swaps:
            swaps.append(time.monotonic())
        after = len(results)
        settle = time.monotonic() + 60
        while len(results) < after + len(charts) and time.monotonic() < settle:
            time.sleep(0.5)  # a full pass over the charts on the new file
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=180)
        if run.poll() is None:
            run.kill()
        run.wait()
        log.close()
    out = log_path.read_text(encoding="utf-8", errors="replace")
    assert run.returncode == 0, out[-4000:]
    assert swaps, "crmwh run finished without publishing a new warehouse file"
    errors = [r for r in results if r[2]]
    print(f"refresh: {len(results)} chart queries during the run and after, {len(errors)} errors")
    assert len(results) >= 2 * len(charts)
    assert errors == []


# --------------------------------------------------------------------------- browser


def _browser_tools() -> list[str]:
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists():
        missing.append("chromium")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        missing.append("playwright-core")
    return missing


def test_browser_renders_every_dashboard_without_errors(served: Served) -> None:
    """playwright-core drives Debian's Chromium: log in, open each dashboard, no chart in
    error; full-page screenshots land in tests/browser/screenshots/ (gitignored)."""
    missing = _browser_tools()
    if missing:
        msg = f"browser test needs {missing}: run scripts/setup_browser.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    shots = BROWSER_DIR / "screenshots"
    env = dict(
        os.environ,
        SUPERSET_URL=served.base,
        SUPERSET_USER=served.creds.username,
        SUPERSET_PASSWORD=served.creds.password,
        SCREENSHOT_DIR=str(shots),
    )
    done = subprocess.run(
        ["node", str(BROWSER_DIR / "dashboards.mjs")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-4000:]
    report = json.loads(lines[-1])
    assert not [e for e in report["errors"] if e.startswith("setup")], report["errors"]
    assert {d["slug"] for d in report["dashboards"]} == DASHBOARD_SLUGS
    absent = sorted({t for tables in served.missing.values() for t in tables})
    problems = []
    for d in report["dashboards"]:
        assert Path(d["screenshot"]).stat().st_size > 10_000, d
        assert d["chartRequests"] >= d["charts"], d
        for msg in [m["message"] for m in d["failedRequests"]] + d["errorsInPage"]:
            if not any(f"{t} does not exist" in msg for t in absent):
                problems.append((d["title"], msg))
    print("screenshots:", ", ".join(d["screenshot"] for d in report["dashboards"]))
    assert problems == []
    # the dashboards' default filters reach the charts on first load: one attribution
    # model on every marketing chart, one as-of snapshot on the aging charts
    requests = {d["slug"]: d["requests"] for d in report["dashboards"]}
    marketing = requests["marketing"]
    assert marketing and all(
        any(f.startswith('attribution_model IN ["last_touch"]') for f in r["filters"])
        for r in marketing
    ), marketing
    as_of = {"Aging buckets as of the chosen date", "Overdue by customer", "Overdue by manager"}
    aging = [r for r in requests["finance"] if r["chart"] in as_of]
    assert {r["chart"] for r in aging} == as_of, requests["finance"]
    assert all(any(f.startswith("as_of IN") for f in r["filters"]) for r in aging), aging
    if absent:
        pytest.skip(f"charts on marts not built yet showed errors (expected): {absent}")
