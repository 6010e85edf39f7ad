"""Superset: the bundle and config checks, and a real server serving the five dashboards.

The server tests run the real thing end to end (own venv, ``prepare``, gunicorn, HTTP API,
HTTP API) on a warehouse built by the real pipeline, because the ways this breaks - a
dependency that no longer starts, a chart whose saved query no longer matches the marts,
an import that duplicates objects, a role that sees too much - only show up there. One
server (the session fixture ``served`` of conftest.py) serves them all; the browser test
is tests/test_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import statistics
import subprocess
import threading
import time
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from pipelines.lib import superset
from tests.conftest import CRMWH, ROOT, ServedUser, busiest_manager
from tests.superset_api import DASHBOARD_SLUGS, Api, Served, rison_eq, served_texts

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
        dbs = {
            (d := yaml.safe_load(zf.read(n)))["database_name"]: d
            for n in zf.namelist()
            if "/databases/" in n
        }
    # the warehouse, and its masked copy beside it (SQL Lab of every role but Admin)
    assert sorted(dbs) == ["CRM warehouse", superset.MASKED_DATABASE_NAME]
    masked = warehouse.resolve().with_name("warehouse.masked.duckdb")
    assert dbs["CRM warehouse"]["sqlalchemy_uri"] == f"duckdb:///{warehouse.resolve()}"
    assert dbs[superset.MASKED_DATABASE_NAME]["sqlalchemy_uri"] == f"duckdb:///{masked}"
    for db in dbs.values():
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


def test_ensure_users_refuses_weak_passwords_and_twice_listed_names(tmp_path: Path) -> None:
    """Checked before Superset is started: nothing reaches it (``tmp_path`` has no state)."""
    good = superset.UserSpec("u_one", "Batch-Test-Pass-1", ("Analyst",))
    weak = superset.UserSpec("u_two", "password", ("Analyst",))
    with pytest.raises(superset.SupersetError, match="password for u_two is too weak"):
        superset.ensure_users(tmp_path, [good, weak])
    with pytest.raises(superset.SupersetError, match="password for u_two is too weak"):
        superset.ensure_user(tmp_path, "u_two", "short", ["Analyst"])
    with pytest.raises(superset.SupersetError, match="listed twice: u_one"):
        superset.ensure_users(tmp_path, [good, good])
    assert "Batch-Test-Pass-1" not in repr(good)
    superset.ensure_users(tmp_path, [])  # nothing to do: no Superset process
    assert not (tmp_path / "superset").exists()


# --------------------------------------------------------------------------- server


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
    for path in ("/login/", "/health"):
        with urllib.request.urlopen(f"{served.base}{path}", timeout=30) as resp:
            headers = resp.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (path, csp)
        assert "http:" not in csp.replace("http://127.0.0.1", ""), csp  # no third parties
        assert headers.get("X-Frame-Options") == "DENY", path
        assert headers.get("X-Content-Type-Options") == "nosniff", path
        assert headers.get("Referrer-Policy") == "same-origin", path
        assert "camera=()" in headers.get("Permissions-Policy", ""), path

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
    """Chart by chart, through the chart data API with each chart's saved query, uncached."""
    problems, missing = superset.check_bundle_against_warehouse(served.warehouse)
    assert problems == [] and missing == {}, (problems, missing)
    api = served.admin()
    charts = _all_charts(api)
    assert len(charts) == len(list((superset.BUNDLE_DIR / "charts").glob("*.yaml")))
    latencies: list[float] = []
    failures = []
    for chart in charts:
        t = time.monotonic()
        status, body = api.call("GET", f"/api/v1/chart/{chart['id']}/data/?force=true")
        latencies.append(time.monotonic() - t)
        where = f"{chart['dashboard']} / {chart['slice_name']}"
        if status != 200:
            failures.append(f"{where}: HTTP {status} {str(body)[:300]}")
        elif not body["result"] or body["result"][0]["rowcount"] <= 0:
            failures.append(f"{where}: no rows")
    assert not failures, "charts failing on the demo warehouse:\n" + "\n".join(failures)
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print(
        f"chart data, uncached, {len(latencies)} charts: p50 {statistics.median(latencies):.2f}s"
        f" p95 {p95:.2f}s max {latencies[-1]:.2f}s"
    )


def _saved_query(api: Api, chart_id: int) -> dict[str, Any]:
    status, body = api.call("GET", f"/api/v1/chart/{chart_id}")
    assert status == 200, body
    return json.loads(body["result"]["query_context"])


def test_native_filters_list_values_and_apply_to_their_charts(served: Served) -> None:
    """What the dashboard does with each native filter, done through the API: a select
    filter lists its values from its dataset, and every chart in its scope still answers
    with that filter applied (a chart lacking the column would fail); the period filter
    applies a time range to each chart in scope."""
    api = served.admin()
    seen: dict[str, set[str]] = {}
    failures = []
    for d in api.dashboards():
        status, body = api.call("GET", f"/api/v1/dashboard/{d['id']}")
        assert status == 200, body
        meta = json.loads(body["result"]["json_metadata"])
        ids = {c["id"]: c["slice_name"] for c in api.charts_of(d["id"])}
        for flt in meta["native_filter_configuration"]:
            name = flt["name"]
            seen.setdefault(d["slug"], set()).add(name)
            # the scope as the dashboard computes it on load: every chart under the root
            # but the excluded ones (the importer remaps `excluded`, not `chartsInScope`)
            assert flt["scope"]["rootPath"] == ["ROOT_ID"], flt["scope"]
            in_scope = [c for c in ids if c not in flt["scope"]["excluded"]]
            assert in_scope, f"{d['slug']}: filter {name} reaches no chart"
            if flt["filterType"] == "filter_time":
                extra = {"op": "TEMPORAL_RANGE", "val": "2000-01-01 : 2100-01-01"}
                values: list[Any] = []
            else:
                target = flt["targets"][0]
                column = target["column"]["name"]
                status, res = api.query(target["datasetId"], [column], None)
                assert status == 200, (d["slug"], name, res)
                values = [r[column] for r in res["result"][0]["data"] if r[column] is not None]
                assert values, f"{d['slug']}: filter {name} lists no values"
                extra = {"col": column, "op": "IN", "val": values[:1]}
            for chart_id in in_scope:
                qc = _saved_query(api, chart_id)
                for query in qc["queries"]:
                    if extra["op"] == "TEMPORAL_RANGE":
                        tf = next(
                            (f for f in query.get("filters", []) if f["op"] == "TEMPORAL_RANGE"),
                            None,
                        )
                        if tf is None:
                            failures.append(f"{d['slug']}/{ids[chart_id]}: no time column")
                            continue
                        tf["val"] = extra["val"]
                    else:
                        query.setdefault("filters", []).append(extra)
                qc["force"] = True
                status, res = api.call("POST", "/api/v1/chart/data", qc)
                if status != 200:
                    failures.append(f"{d['slug']}/{ids[chart_id]} with {name}: {str(res)[:200]}")
    assert not failures, "\n".join(failures)
    assert served_texts({"Period", "Team", "Manager"}) <= seen["executive"]
    assert served_texts({"Attribution model", "Period", "Channel"}) <= seen["marketing"]
    assert (
        served_texts({"Period", "Pipeline", "Team", "Manager", "Channel"}) <= seen["sales-funnel"]
    )
    assert served_texts({"Period", "Team", "Manager", "As of date"}) <= seen["finance"]
    assert served_texts({"Period", "Source"}) <= seen["data-quality"]


def test_data_quality_dashboard_links_the_served_data_docs(served: Served) -> None:
    api = served.admin()
    status, body = api.call("GET", "/api/v1/dashboard/data-quality")
    assert status == 200, body
    position = json.loads(body["result"]["position_json"])
    notes = [
        n["meta"]["code"]
        for n in position.values()
        if isinstance(n, dict) and n.get("type") == "MARKDOWN"
    ]
    assert any(f"]({served.data_docs_url})" in n for n in notes), notes
    assert not any(superset.DATA_DOCS_PLACEHOLDER in n for n in notes)
    status, page = api.call("GET", served.data_docs_url)  # behind the login: as the admin
    assert status == 200 and "Data Docs" in page, str(page)[:300]


def test_concurrent_uncached_queries_do_not_share_a_connection(served: Served) -> None:
    api = served.admin()
    charts = _all_charts(api)[:8]

    def fetch(chart_id: int) -> tuple[int, Any]:
        return api.call("GET", f"/api/v1/chart/{chart_id}/data/?force=true")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(fetch, [c["id"] for c in charts] * 2))
    assert all(status == 200 for status, _ in results), results
    assert all(body["result"][0]["rowcount"] > 0 for _, body in results)


MASKED_DB = superset.MASKED_DATABASE_NAME
#: database ids as the admin sees them, for users who may not list a database
_database_ids: dict[str, int] = {}


def _remember_databases(admin: Api) -> None:
    for name in ("CRM warehouse", MASKED_DB):
        status, body = admin.call("GET", f"/api/v1/database/?q={rison_eq('database_name', name)}")
        assert status == 200 and body["result"], (name, body)
        _database_ids[name] = body["result"][0]["id"]


def _sql(
    api: Api, statement: str, schema: str = "marts", database: str = "CRM warehouse"
) -> tuple[int, Any]:
    """Run ``statement`` in SQL Lab on ``database`` (the admin's id lookup when the user
    may not list it: the server must refuse by itself)."""
    status, body = api.call("GET", f"/api/v1/database/?q={rison_eq('database_name', database)}")
    if status == 200 and body["result"]:
        database_id = body["result"][0]["id"]
    else:
        database_id = _database_ids.get(database, 1)
    return api.call(
        "POST",
        "/api/v1/sqllab/execute/",
        {"database_id": database_id, "sql": statement, "runAsync": False, "schema": schema},
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


def _busiest_manager(warehouse: Path) -> tuple[str, int, int]:
    """The manager with most deals: id, their deals, their missed calls."""
    manager_id = busiest_manager(warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        deals = con.execute(
            "select count(*) from marts.fct_deal where manager_id = ?", [manager_id]
        ).fetchall()[0][0]
        calls = con.execute(
            "select count(*) from marts.mart_missed_calls where manager_id = ?", [manager_id]
        ).fetchall()[0][0]
        return manager_id, deals, calls
    finally:
        con.close()


def test_roles_see_what_they_should_and_nothing_more(
    served: Served, served_users: dict[str, ServedUser]
) -> None:
    manager_id, manager_deals, _ = _busiest_manager(served.warehouse)
    # created by `served_users` in one Superset process: t_manager with the manager id,
    # t_nobody a Manager without one (deny by default)
    users = ("t_analyst", "t_exec", "t_finance", "t_manager", "t_nobody")
    assert served_users["t_manager"].manager and served_users["t_manager"].roles == ("Manager",)
    assert not served_users["t_nobody"].manager
    password = served_users["t_manager"].password
    # idempotent: running it again changes nothing and does not fail
    superset.ensure_user(served.state, "t_manager", password, ["Manager"], manager_id=manager_id)
    apis = {}
    for name in users:
        apis[name] = Api(served.base)
        apis[name].login(name, served_users[name].password)
    admin = served.admin()
    _remember_databases(admin)
    tables = ("deals", "customers", "customer_contacts", "invoices", "missed_calls")
    ds = {t: admin.dataset_id(t) for t in tables}

    # dashboards each role is given (DASHBOARD_RBAC), and no others
    slugs = {n: {d["slug"] for d in api.dashboards()} for n, api in apis.items()}
    assert slugs["t_exec"] == slugs["t_finance"] == slugs["t_analyst"] == DASHBOARD_SLUGS
    assert slugs["t_manager"] == {"executive", "sales-funnel", "data-quality"}
    status, _ = apis["t_manager"].call("GET", "/api/v1/dashboard/finance")
    assert status in (403, 404)

    # every chart of every dashboard a role sees renders for it
    for name, api in apis.items():
        for chart in _all_charts(api):
            status, body = api.call("GET", f"/api/v1/chart/{chart['id']}/data/")
            assert status == 200, (name, chart["slice_name"], body)

    # SQL Lab: Analyst only, and only on the masked marts
    status, body = _sql(
        apis["t_analyst"],
        "select count(*) as n from marts_masked.fct_deal",
        "marts_masked",
        MASKED_DB,
    )
    assert status == 200 and body["data"][0]["n"] > 0, body
    for other in (
        "raw.file_delivery",
        "staging.stg_bitrix__deals",
        "marts.fct_deal",
        "marts.dim_customer",
        "marts.fct_call",
    ):
        for database in ("CRM warehouse", MASKED_DB):
            status, body = _sql(
                apis["t_analyst"], f"select count(*) as n from {other}", database=database
            )
            assert status != 200, (other, database, body)
    for name in ("t_exec", "t_finance", "t_manager", "t_nobody"):
        status, body = _sql(apis[name], "select 1 as x")
        assert status == 403, (name, status, body)
    # Explore: not for the dashboards-only roles
    for name in ("t_exec", "t_manager"):
        status, _ = apis[name].call(
            "GET", f"/api/v1/explore/?datasource_type=table&datasource_id={ds['deals']}"
        )
        assert status == 403, name
    status, _ = apis["t_finance"].call(
        "GET", f"/api/v1/explore/?datasource_type=table&datasource_id={ds['deals']}"
    )
    assert status == 200

    # Row Level Security: a manager sees their own deals, customers, calls, invoices only
    status, body = apis["t_manager"].query(ds["deals"], ["manager_id"])
    assert status == 200, body
    rows = body["result"][0]["data"]
    assert [(r["manager_id"], r["n"]) for r in rows] == [(manager_id, manager_deals)]
    for table in ("customers", "invoices", "missed_calls"):
        status, body = apis["t_manager"].query(ds[table], ["manager_id"])
        assert status == 200, body
        seen = {r["manager_id"] for r in body["result"][0]["data"]}
        assert seen == {manager_id}, (table, seen)
        status, body = apis["t_exec"].query(ds[table], ["manager_id"])
        assert len({r["manager_id"] for r in body["result"][0]["data"]}) > 1, table
    status, body = apis["t_exec"].query(ds["deals"], ["manager_id"])
    assert len(body["result"][0]["data"]) > 1  # exempt roles see every manager
    for table in ("deals", "customers", "invoices", "missed_calls"):
        status, body = apis["t_nobody"].query(ds[table], [])
        assert status == 200 and body["result"][0]["data"][0]["n"] == 0, (table, body)

    # contacts: raw for Finance, masked for everyone else, unreachable through the raw set
    status, body = apis["t_finance"].query(ds["customer_contacts"], ["primary_phone"], None)
    assert status == 200, body
    phones = [r["primary_phone"] for r in body["result"][0]["data"] if r["primary_phone"]]
    assert phones and all(p.startswith("+") and "*" not in p for p in phones)
    status, body = apis["t_finance"].query(ds["customer_contacts"], ["primary_email"], None)
    mails = [r["primary_email"] for r in body["result"][0]["data"] if r["primary_email"]]
    assert mails and all("@" in m and "*" not in m for m in mails)
    for name in ("t_exec", "t_manager", "t_nobody"):
        status, body = apis[name].query(ds["customer_contacts"], ["primary_phone"], None)
        assert status in (403, 404), (name, status, body)
    for name in ("t_exec", "t_manager", "t_analyst"):
        status, body = apis[name].query(ds["customers"], ["phone_masked", "email_masked"], None)
        assert status == 200, body
        masked = [r for r in body["result"][0]["data"] if r["phone_masked"]]
        assert masked and all("*" in r["phone_masked"] for r in masked), name
        assert all("***@" in r["email_masked"] for r in masked if r["email_masked"]), name
    # an ad-hoc expression cannot reach the raw table through a subquery
    status, body = apis["t_exec"].query(
        ds["customers"], [], "max((select primary_phone from marts.dim_customer limit 1))"
    )
    assert status != 200, body


def test_a_bad_entry_in_a_batch_of_users_applies_none(served: Served) -> None:
    """``ensure_users`` checks every entry inside Superset before applying the first."""
    users = [
        superset.UserSpec("t_batch_ok", "Batch-Test-Pass-1", ("Analyst",)),
        superset.UserSpec("t_batch_bad", "Batch-Test-Pass-1", ("Owner",)),
    ]
    with pytest.raises(superset.SupersetError, match="no such role: Owner") as exc:
        superset.ensure_users(served.state, users)
    assert "create 2 users" in str(exc.value) and "Batch-Test-Pass-1" not in str(exc.value)
    status, _ = Api(served.base).call(
        "POST", "/api/v1/security/login",
        {"username": "t_batch_ok", "password": "Batch-Test-Pass-1", "provider": "db"},
    )  # fmt: skip
    assert status == 401


def test_analyst_reads_contacts_only_masked(
    served: Served, served_users: dict[str, ServedUser]
) -> None:
    """The Analyst's SQL Lab grant is `marts_masked` (dbt views masking every column marked
    `meta: {mask: ...}`): phones and e-mails come back masked, the raw `customer_contacts`
    dataset and the marts' own tables are refused."""
    assert served_users["t_analyst2"].roles == ("Analyst",)
    api = Api(served.base)
    api.login("t_analyst2", served_users["t_analyst2"].password)
    _remember_databases(served.admin())
    ds = served.admin().dataset_id("customer_contacts")
    status, body = api.query(ds, ["primary_phone"], None)
    assert status in (403, 404), (status, str(body)[:300])

    with duckdb.connect(str(served.warehouse), read_only=True) as con:
        raw_phones = {
            r[0]
            for r in con.execute(
                "select primary_phone from marts.dim_customer where primary_phone is not null"
            ).fetchall()
        }
        raw_emails = {
            r[0]
            for r in con.execute(
                "select primary_email from marts.dim_customer where primary_email is not null"
            ).fetchall()
        }
    assert raw_phones and raw_emails
    status, body = _sql(
        api,
        "select name, primary_phone, primary_email from marts_masked.dim_customer "
        "where primary_phone is not null or primary_email is not null",
        "marts_masked",
        MASKED_DB,
    )
    assert status == 200, body
    rows = body["data"]
    assert rows
    phones = [r["primary_phone"] for r in rows if r["primary_phone"]]
    emails = [r["primary_email"] for r in rows if r["primary_email"]]
    # +79161234567 -> +79*******67; ivan@mail.ru -> i***@mail.ru
    assert phones and all(re.fullmatch(r"\+\d{2}\*+\d{2}", p) for p in phones), phones[:5]
    assert emails and all(re.fullmatch(r"[^@]\*\*\*@[^@]+", e) for e in emails), emails[:5]
    shown = {r["name"] for r in rows} | set(phones) | set(emails)
    assert not shown & (raw_phones | raw_emails), sorted(shown & (raw_phones | raw_emails))[:5]
    for database in ("CRM warehouse", MASKED_DB):
        status, body = _sql(
            api, "select primary_phone from marts.dim_customer limit 1", database=database
        )
        assert status != 200, (database, body)
    status, body = _sql(
        api,
        "select external_e164 from marts_masked.fct_call where external_e164 is not null limit 20",
        "marts_masked",
        MASKED_DB,
    )
    assert status == 200 and body["data"], body
    assert all("*" in r["external_e164"] for r in body["data"]), body["data"]


# --------------------------------------------------------------------------- refresh


CACHE_SCRIPT = """
import os, runpy, sys
from werkzeug.utils import import_string
config = runpy.run_path(sys.argv[1])
data_cache = config["DATA_CACHE_CONFIG"]
cls = import_string(data_cache["CACHE_TYPE"])  # as flask-caching resolves it
from crmwh_published_cache import served_version
c = cls(default_timeout=data_cache["CACHE_DEFAULT_TIMEOUT"])
c.set("k", 1)
assert c.get("k") == 1 and c.has("k")
assert c.add("k", 2) is False and c.get("k") == 1  # add keeps a live entry
assert c.get_many("k", "x") == [1, None]
served = os.environ["CRMWH_SERVED_FILES"].split(os.pathsep)[0]
before = served_version()
with open(served + ".new", "wb") as f:
    f.write(b"the next version")
os.replace(served + ".new", served)  # a publish
assert served_version() != before
assert c.get("k") is None and not c.has("k") and c.get_many("k") == [None]
c.set("k", 3)
assert c.get("k") == 3
print(cls.__name__, data_cache["CACHE_DEFAULT_TIMEOUT"])
"""


def test_chart_cache_keys_follow_the_published_version(tmp_path: Path) -> None:
    """Superset's chart-data cache as superset_config configures it (in Superset's venv):
    an entry is read back within a version; once a new file replaces the served one (a
    publish), no entry of the older version is read, and the new version caches again."""
    superset._ensure_secret_key(tmp_path)
    served = tmp_path / "warehouse.duckdb"
    served.write_bytes(b"the first version")
    env = {
        "PATH": os.environ["PATH"],
        "CRMWH_SUPERSET_STATE": str(tmp_path),
        # the masked copy does not exist: a missing file is part of the version too
        "CRMWH_SERVED_FILES": os.pathsep.join([str(served), str(tmp_path / "masked.duckdb")]),
    }
    out = subprocess.run(
        [str(superset.venv_dir() / "bin" / "python"), "-c", CACHE_SCRIPT, str(superset.CONFIG_FILE)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == f"PublishedVersionCache {24 * 3600}"


def _land_a_new_export(landing: Path) -> Path:
    """A later Bitrix deals export: the latest one minus its last deal (a new file, new
    checksum, so the run ingests it, rebuilds and publishes)."""
    latest = sorted((landing / "crm_bitrix").glob("deals_*.csv"))[-1]
    lines = latest.read_bytes().splitlines(keepends=True)
    new = latest.with_name("deals_2099-01-01.csv")
    new.write_bytes(b"".join(lines[:-1]))
    return new


def test_zero_chart_errors_while_a_refresh_publishes(served: Served, tmp_path: Path) -> None:
    """`crmwh run` over a landing folder with a new export builds a new warehouse and swaps
    it over the served file while 3 clients fetch chart data (several charts, uncached) in
    a loop: not one chart request may fail, and the swap happens while they query. A chart
    answered from Superset's cache before the publish answers with the new version's value
    after it (the cache is keyed by the published version), and from the cache again."""
    api = served.admin()
    charts = _all_charts(api)
    as_of = next(c for c in charts if c["slice_name"] in served_texts({"Data as of"}))

    def as_of_value() -> tuple[Any, bool]:
        status, body = api.call("GET", f"/api/v1/chart/{as_of['id']}/data/")  # cache allowed
        assert status == 200, body
        return body["result"][0]["data"], body["result"][0]["is_cached"]

    old, _ = as_of_value()
    assert as_of_value() == (old, True), "the chart-data cache does not answer"
    picked = [
        c
        for c in charts
        if c["dashboard"] in served_texts({"Executive overview", "Sales — funnel and managers"})
    ][:10]
    assert len(picked) >= 6, [c["dashboard"] for c in charts]
    data = tmp_path / "data"
    shutil.copytree(served.demo.data, data)  # the manifest: a rerun, not a first load
    landing = tmp_path / "landing"
    shutil.copytree(served.demo.landing, landing)
    _land_a_new_export(landing)
    env = dict(
        served.demo.env, CRMWH_PATHS__DATA=str(data), CRMWH_PATHS__STATE=str(tmp_path / "state")
    )
    inode = served.warehouse.stat().st_ino
    log_path = tmp_path / "run.log"
    results: list[tuple[float, str, int, str]] = []
    swaps: list[float] = []
    stop = threading.Event()

    def client(offset: int) -> None:
        mine = Api(served.base)
        mine.login(served.creds.username, served.creds.password)
        order = picked[offset:] + picked[:offset]
        while not stop.is_set():
            for chart in order:
                status, body = mine.call("GET", f"/api/v1/chart/{chart['id']}/data/?force=true")
                ok = status == 200 and body["result"][0]["rowcount"] > 0
                err = "" if ok else f"HTTP {status} {str(body)[:300]}"
                results.append((time.monotonic(), chart["slice_name"], status, err))
                if stop.is_set():
                    return

    threads = [threading.Thread(target=client, args=(i * 3,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    with open(log_path, "w", encoding="utf-8") as log:  # a pipe could fill and block the run
        run = subprocess.Popen(
            [*CRMWH, "run", "--landing", str(landing), "--warehouse", str(served.warehouse)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    t_start = time.monotonic()
    deadline = t_start + 1500
    try:
        while run.poll() is None and time.monotonic() < deadline:
            if served.warehouse.stat().st_ino != inode:
                swaps.append(time.monotonic())
                inode = served.warehouse.stat().st_ino
            time.sleep(0.1)
        t_end = time.monotonic()
        if served.warehouse.stat().st_ino != inode:
            swaps.append(t_end)
        settle = time.monotonic() + 120
        while sum(1 for r in results if r[0] > t_end) < len(picked) and time.monotonic() < settle:
            time.sleep(0.5)  # a full pass over the charts on the new file
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=180)
        if run.poll() is None:
            run.kill()
        run.wait()
    out = log_path.read_text(encoding="utf-8", errors="replace")
    assert run.returncode == 0, out[-4000:]
    assert swaps, "crmwh run finished without publishing a new warehouse file"
    errors = [r for r in results if r[3]]
    before = sum(1 for r in results if r[0] < swaps[0])
    after = sum(1 for r in results if r[0] > swaps[0])
    print(
        f"refresh: run {t_end - t_start:.0f}s, {len(swaps)} swap(s), {len(results)} chart "
        f"queries by 3 clients ({before} before the swap, {after} after), {len(errors)} errors"
    )
    assert before > 0 and after >= len(picked), (before, after)
    assert errors == [], errors[:10]
    new, _ = as_of_value()
    assert new != old, f"the cached value of the old version was served after the publish: {old}"
    assert as_of_value() == (new, True)
    # the new export was ingested by that run (recorded in the manifest by checksum)
    manifest = "".join(
        p.read_text("utf-8", "replace") for p in (data / "manifest").rglob("*") if p.is_file()
    )
    assert "deals_2099-01-01.csv" in manifest
