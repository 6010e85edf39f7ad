"""Row Level Security and masking against a hostile user.

Fast tier: the chart-SQL rules of ``dashboards/server/access_guard.py`` (pure functions,
loaded without Superset) and the masked copy of the warehouse (``pipelines.lib.masked``)
on a hand-made DuckDB file. Slow tier (the session's ``served`` server): the requests an
attacker sends - an ad-hoc filter that switches the manager filter off, and SQL Lab
queries whose tables Superset's parser does not see (PIVOT, UNPIVOT, SUMMARIZE, SHOW,
PRAGMA) - are refused or see only masked data.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

from pipelines.lib import superset
from pipelines.lib.masked import build_masked, masked_path, write_masked
from pipelines.lib.publish import publish, rollback
from tests.conftest import CRMWH, ROOT, SQLLAB_TEST_TIMEOUT, ServedUser, busiest_manager
from tests.superset_api import Api, Served, rison_eq


def _guard() -> ModuleType:
    path = superset.SERVER_DIR / "access_guard.py"
    spec = importlib.util.spec_from_file_location("access_guard_under_test", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


G = _guard()
BYPASS = {"col": {"sqlExpression": "1=1 OR manager_id", "label": "c"}, "op": "IS NOT NULL"}


def _chart_request(**query: Any) -> dict[str, Any]:
    return {"datasource": {"id": 1, "type": "table"}, "queries": [query]}


# --------------------------------------------------------------------------- fast: rules


def test_custom_sql_in_charts_is_refused_for_row_filtered_roles() -> None:
    bypass = _chart_request(columns=["manager_id"], filters=[BYPASS])
    for roles in ({"Manager"}, {"Executive"}, {"Finance"}, {"Manager", "Gamma"}, set()):
        problem = G.sql_problem(bypass, roles)
        assert problem and "not allowed for your role" in problem, roles
    assert G.sql_problem(bypass, {"Admin"}) is None
    # the same SQL hidden in extras.where, in a HAVING, or in form_data sent as a string
    hidden = [
        _chart_request(extras={"where": "1=1 OR manager_id IS NOT NULL"}),
        _chart_request(extras={"having": "count(*) > 0 OR 1=1"}),
        {"form_data": json.dumps({"adhoc_filters": [{"sqlExpression": "1=1 OR x"}]})},
        {"form_data": json.dumps({"queries": [{"extras": {"where": "1=1 OR true"}}]})},
    ]
    for payload in hidden:
        assert G.sql_problem(payload, {"Manager"}), payload
    # nesting deeper than any chart needs is treated as hidden SQL
    deep: Any = {"x": 1}
    for _ in range(60):
        deep = {"a": deep}
    assert G.sql_problem(deep, {"Manager"})


def test_dashboard_charts_sql_is_allowed() -> None:
    """What the shipped charts send: bare column names (x axis) and plain aggregates."""
    for expression in ("month", '"manager_name"', " stage_label ", "COUNT(*)", "sum(amount)",
                       'count(DISTINCT "deal_id")', "AVG( days )"):  # fmt: skip
        payload = _chart_request(columns=[{"sqlExpression": expression}])
        assert G.sql_problem(payload, {"Manager"}) is None, expression
    # a bare name must be a column of the dataset when the dataset is known
    payload = [_chart_request(columns=[{"sqlExpression": "month"}])]
    assert G.sql_problem(payload, {"Manager"}, {"month", "amount"}) is None
    assert G.sql_problem(payload, {"Manager"}, {"amount"})
    assert G.sql_problem(_chart_request(metrics=[{"sqlExpression": "sum(secret)"}]),
                         {"Manager"}, {"amount"})  # fmt: skip
    for expression in ("count(*) + 0", "sum(amount) OR 1=1", "max((select 1))", "now()"):
        assert G.sql_problem(_chart_request(metrics=[{"sqlExpression": expression}]),
                             {"Executive"}), expression  # fmt: skip


def test_analyst_expressions_cannot_reach_another_table() -> None:
    allowed = ("1=1 OR manager_id IS NOT NULL", "amount * 2", "name = 'select from pivot'",
               "coalesce(region, 'n/a')", "date_trunc('month', created_at)")  # fmt: skip
    for expression in allowed:
        assert G.analyst_problem(expression) is None, expression
    refused = {
        "max((select primary_phone from marts.dim_customer limit 1))": "select",
        "(from marts.dim_customer select 1)": "from",
        "len(read_csv('/etc/passwd'))": "read_csv",
        "(pivot marts.dim_customer on legal_form using count(*))": "pivot",
        "getenv('HOME')": "getenv",
        "duckdb_tables()": "duckdb_tables",
        "query_table('marts.dim_customer')": "query_table",
        "1; drop table x": "semicolon",
        "'it''s' || 'open": "unterminated",
        "$$select$$": "dollar",
        "E'\\x27'": "backslash",
    }
    for expression, word in refused.items():
        problem = G.analyst_problem(expression)
        assert problem and word in problem, (expression, problem)
    assert G.sql_problem(_chart_request(filters=[BYPASS]), {"Analyst"}) is None


def test_only_physical_datasets_are_chart_sources() -> None:
    assert G.foreign_datasource(_chart_request()) is None
    assert G.foreign_datasource({"datasource": {"id": 3, "type": "query"}}) == "query"
    assert G.foreign_datasource({"form_data": json.dumps({"datasource": "12__query"})}) == "query"
    assert G.foreign_datasource({"datasource_type": "saved_query"}) == "saved_query"
    assert G.foreign_datasource({"datasource": "12__table"}) is None


def test_sql_lab_connection_path_is_the_masked_copy() -> None:
    for path in ("/srv/warehouse.duckdb", "/a b/x.duckdb", "/srv/warehouse.masked.duckdb"):
        assert G.masked_database(path) == str(masked_path(Path(path))), path


# --------------------------------------------------------------------------- fast: copy


def _tiny_warehouse(path: Path, phone: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts; create schema marts_masked; create schema raw")
        con.execute(
            "create table marts.dim_customer as select 1 as customer_id, ? as primary_phone",
            [phone],
        )
        con.execute("create table raw.secrets as select 'token' as s")
        con.execute(
            "create view marts_masked.dim_customer as select customer_id,"
            " left(primary_phone, 3) || '*******' || right(primary_phone, 2) as primary_phone"
            " from marts.dim_customer"
        )
    finally:
        con.close()


def _contents(path: Path) -> tuple[set[tuple[str, str, str]], list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {
            (s, t, k)
            for s, t, k in con.execute(
                "select table_schema, table_name, table_type from information_schema.tables"
            ).fetchall()
        }
        rows = con.execute("select * from marts_masked.dim_customer").fetchall()
        return tables, rows
    finally:
        con.close()


def test_masked_copy_holds_the_masked_marts_only(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    _tiny_warehouse(warehouse, "+79161234567")
    built = build_masked(warehouse, masked_path(warehouse))
    assert built.parent == tmp_path and built != masked_path(warehouse)
    assert not masked_path(warehouse).exists()  # nothing at the served name until swapped
    written = write_masked(warehouse)
    assert written == tmp_path / "warehouse.masked.duckdb"
    assert not built.exists() or built == written
    tables, rows = _contents(written)
    assert tables == {("marts_masked", "dim_customer", "BASE TABLE")}, tables
    assert rows == [(1, "+79*******67")]
    assert "+79161234567" not in written.read_bytes().decode("latin-1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "warehouse.duckdb",
        "warehouse.masked.duckdb",
    ]


def test_publish_and_rollback_keep_the_masked_copy_in_step(tmp_path: Path) -> None:
    served = tmp_path / "warehouse.duckdb"
    for phone in ("+79160000001", "+79160000002"):
        build = tmp_path / "warehouse.duckdb.build"
        _tiny_warehouse(build, phone)
        publish(build, served)
        _, rows = _contents(masked_path(served))
        assert rows == [(1, phone[:3] + "*******" + phone[-2:])], rows
    rollback(served)
    _, rows = _contents(masked_path(served))
    assert rows == [(1, "+79*******01")], rows


# --------------------------------------------------------------------------- slow: served


def _raw_contacts(warehouse: Path) -> set[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select primary_phone from marts.dim_customer where primary_phone is not null"
            " union select primary_email from marts.dim_customer where primary_email is not null"
            " union select external_e164 from marts.fct_call where external_e164 is not null"
        ).fetchall()
    return {r[0] for r in rows}


def _deal_counts(warehouse: Path) -> tuple[str, int, int]:
    manager_id = busiest_manager(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        mine = con.execute(
            "select count(*) from marts.fct_deal where manager_id = ?", [manager_id]
        ).fetchall()[0][0]
        total = con.execute("select count(*) from marts.fct_deal").fetchall()[0][0]
    return manager_id, mine, total


PASSWORD = "Hostile-Test-Pass-7"


def crmwh_users(served: Served, *args: str, password: str | None = PASSWORD):
    """`crmwh users ...` on the served install's state, as an administrator runs it."""
    env = dict(os.environ, CRMWH_PATHS__STATE=str(served.state))
    env.pop("CRMWH_USER_PASSWORD", None)
    if password is not None:
        env["CRMWH_USER_PASSWORD"] = password
    return subprocess.run(
        [*CRMWH, "users", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip


def _user(served: Served, name: str, roles: list[str], manager_id: str | None = None) -> Api:
    """A user added with `crmwh users add`, logged in."""
    args = ["add", name, *(a for r in roles for a in ("--role", r))]
    if manager_id:
        args += ["--manager-id", manager_id]
    done = crmwh_users(served, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    api = Api(served.base)
    api.login(name, PASSWORD)
    return api


def _login(served: Served, users: dict[str, ServedUser], name: str, roles: list[str]) -> Api:
    """One of the session's ``served_users`` (created together in one Superset process)."""
    assert users[name].roles == tuple(roles) and users[name].password == PASSWORD, name
    api = Api(served.base)
    api.login(name, PASSWORD)
    return api


def _rows(body: Any) -> list[dict[str, Any]]:
    return body["result"][0]["data"]


def test_row_security_cannot_be_switched_off_by_an_ad_hoc_filter(
    served: Served, served_users: dict[str, ServedUser]
) -> None:
    manager_id, mine, total = _deal_counts(served.warehouse)
    assert 0 < mine < total
    # h_manager has the busiest manager's id, h_nobody none
    assert served_users["h_manager"].manager and not served_users["h_nobody"].manager
    apis = {
        "h_manager": _login(served, served_users, "h_manager", ["Manager"]),
        "h_nobody": _login(served, served_users, "h_nobody", ["Manager"]),
    }
    deals = served.admin().dataset_id("deals")
    seen = {"h_manager": mine, "h_nobody": 0}
    for name, api in apis.items():
        status, body = api.query(deals, [])
        assert status == 200 and _rows(body)[0]["n"] == seen[name], (name, body)
        # the published attack: an ad-hoc column "1=1 OR manager_id" in a filter
        status, body = api.query(deals, [], filters=[BYPASS])
        assert status == 403, (name, status, str(body)[:300])
        assert "not allowed for your role" in json.dumps(body)
        # the same through the WHERE of extras and a metric that is not an aggregate
        status, body = api.call(
            "POST",
            "/api/v1/chart/data",
            {
                "datasource": {"id": deals, "type": "table"},
                "queries": [{"metrics": ["count"], "extras": {"where": "1=1 OR true"}}],
                "result_format": "json",
                "result_type": "full",
            },
        )
        assert status == 403, (name, status, str(body)[:300])
        for metric in ("count(*) + 0", "max((select count(*) from marts.fct_deal))"):
            status, body = api.query(deals, [], metric)
            assert status == 403, (name, metric, status, str(body)[:300])
        # and plain requests keep answering with the manager's rows only
        status, body = api.query(deals, ["manager_id"])
        assert status == 200, body
        assert {r["manager_id"] for r in _rows(body)} <= {manager_id}, name
        assert sum(r["n"] for r in _rows(body)) == seen[name], name


SQL_LAB_ATTACKS = (
    "select * from (pivot marts.dim_customer on legal_form using count(*) group by primary_phone)",
    "unpivot marts.dim_customer on primary_phone, primary_email into name k value v",
    "select * from (pivot marts.fct_call on direction using count(*) group by external_e164)",
    "pivot intermediate.int_customer_identifiers on 1 using count(*) group by identifier",
    "summarize select primary_phone from marts.dim_customer",
    "select * from query_table('marts.dim_customer')",
    "from marts.dim_customer select primary_email",
)


def test_sql_lab_reaches_no_raw_contact_whatever_the_syntax(
    served: Served, served_users: dict[str, ServedUser]
) -> None:
    raw = _raw_contacts(served.warehouse)
    assert raw
    analyst = _login(served, served_users, "h_analyst", ["Analyst"])
    admin = served.admin()
    ids = {}
    for name in ("CRM warehouse", superset.MASKED_DATABASE_NAME):
        status, body = admin.call("GET", f"/api/v1/database/?q={rison_eq('database_name', name)}")
        assert status == 200 and body["result"], body
        ids[name] = body["result"][0]["id"]

    def run(database: str, sql: str) -> tuple[int, Any]:
        return analyst.call(
            "POST",
            "/api/v1/sqllab/execute/",
            {"database_id": ids[database], "sql": sql, "runAsync": False, "schema": None},
        )

    # the admin still reads everything (the attacks are real queries)
    status, body = admin.call(
        "POST",
        "/api/v1/sqllab/execute/",
        {"database_id": ids["CRM warehouse"], "sql": SQL_LAB_ATTACKS[0], "runAsync": False},
    )
    assert status == 200 and body["data"], str(body)[:300]
    leaked: list[tuple[str, str]] = []
    for database in ids:
        for sql in SQL_LAB_ATTACKS:
            status, body = run(database, sql)
            text = json.dumps(body, ensure_ascii=False)
            leaked += [(sql, value) for value in raw if value in text]
            assert status != 200 or not body.get("data"), (database, sql, text[:300])
    assert not leaked, leaked[:5]

    # the catalog of the analyst's connection holds the masked marts and nothing else
    # (Superset may refuse these statements itself; when it runs them, they must show it)
    status, body = run(superset.MASKED_DATABASE_NAME, "show all tables")
    if status == 200:
        schemas = {r["schema"] for r in body["data"]}
        assert schemas == {"marts_masked"}, schemas
    status, body = run(superset.MASKED_DATABASE_NAME, "pragma database_list")
    if status == 200:
        paths = " ".join(str(r.get("file")) for r in body["data"])
        assert str(served.warehouse) not in paths and "masked" in paths, paths
    status, body = run(
        superset.MASKED_DATABASE_NAME,
        "select table_schema, table_name from information_schema.tables",
    )
    assert status == 200, body
    assert {r["table_schema"] for r in body["data"]} == {"marts_masked"}, body["data"][:5]
    # masked data is still there to analyse
    status, body = run(
        superset.MASKED_DATABASE_NAME,
        "select primary_phone from marts_masked.dim_customer where primary_phone is not null",
    )
    assert status == 200 and body["data"], body
    assert all(re.search(r"\*", r["primary_phone"]) for r in body["data"])


@pytest.mark.parametrize("role", ["Executive", "Finance", "Manager"])
def test_sql_lab_is_refused_to_dashboard_roles(
    served: Served, served_users: dict[str, ServedUser], role: str
) -> None:
    api = _login(served, served_users, f"h_sqllab_{role.lower()}", [role])
    status, body = api.call(
        "POST",
        "/api/v1/sqllab/execute/",
        {"database_id": 1, "sql": SQL_LAB_ATTACKS[0], "runAsync": False},
    )
    assert status in (401, 403), (role, status, str(body)[:300])


def test_users_are_managed_from_the_command_line(served: Served) -> None:
    manager_id, _, _ = _deal_counts(served.warehouse)
    _user(served, "h_cli", ["Manager"], manager_id)
    # adding again updates: another role, the manager scope dropped, a new password
    done = crmwh_users(served, "add", "h_cli", "--role", "Executive", "--email", "c@example.org",
                       password="Another-Pass-8")  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = crmwh_users(served, "list", "--json")
    assert done.returncode == 0, done.stderr
    users = {u["username"]: u for u in json.loads(done.stdout)}
    assert users["h_cli"]["roles"] == ["Executive"] and users["h_cli"]["manager_id"] is None
    assert users["h_cli"]["email"] == "c@example.org"
    assert "Admin" in users[served.creds.username]["roles"]
    Api(served.base).login("h_cli", "Another-Pass-8")
    # refused with a reason: unknown role, no password without a terminal, weak password
    done = crmwh_users(served, "add", "h_x", "--role", "Owner")
    assert done.returncode == 2 and "unknown role Owner" in done.stderr
    done = crmwh_users(served, "add", "h_x", "--role", "Analyst", password=None)
    assert done.returncode == 2 and "CRMWH_USER_PASSWORD" in done.stderr
    done = crmwh_users(served, "add", "h_x", "--role", "Analyst", password="password")
    assert done.returncode == 1 and "too weak" in done.stderr
    # remove: the user can no longer log in; the last admin cannot be removed
    done = crmwh_users(served, "remove", "h_cli")
    assert done.returncode == 0, done.stderr
    status, _ = Api(served.base).call(
        "POST", "/api/v1/security/login",
        {"username": "h_cli", "password": "Another-Pass-8", "provider": "db"},
    )  # fmt: skip
    assert status == 401
    done = crmwh_users(served, "list")
    assert done.returncode == 0 and "h_cli" not in done.stdout
    done = crmwh_users(served, "remove", served.creds.username)
    assert done.returncode == 1 and "last active Admin" in done.stderr


def test_sql_lab_time_limit_interrupts_the_query(
    served: Served, served_users: dict[str, ServedUser]
) -> None:
    """The limit holds on gunicorn's worker threads: a watchdog interrupts DuckDB."""
    analyst = _login(served, served_users, "h_slow", ["Analyst"])
    status, body = served.admin().call(
        "GET", f"/api/v1/database/?q={rison_eq('database_name', superset.MASKED_DATABASE_NAME)}"
    )
    db_id = body["result"][0]["id"]
    heavy = (
        "select count(*) as n from range(100000000) a, range(1000000) b"
        " where (a.range * b.range) % 7 = 3"
    )
    status, body = analyst.call(
        "POST", "/api/v1/sqllab/execute/", {"database_id": db_id, "sql": heavy, "runAsync": False}
    )
    text = json.dumps(body)
    assert status != 200, text[:300]
    assert f"stopped after {SQLLAB_TEST_TIMEOUT} seconds" in text, text[:500]
    # the worker thread is free again and the connection usable
    status, body = analyst.call(
        "POST",
        "/api/v1/sqllab/execute/",
        {"database_id": db_id, "sql": "select 42 as n", "runAsync": False},
    )
    assert status == 200 and body["data"] == [{"n": 42}], body
