"""A small client for Superset's REST API and the served-Superset fixture's data type.

Shared by the server tests (tests/test_superset.py, tests/test_browser.py); the fixture
itself (``served``) is in conftest.py so that one server serves the whole session.
"""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmwh_tools.bench import api_request
from pipelines.lib import superset

DASHBOARD_SLUGS = {"executive", "marketing", "sales-funnel", "finance", "data-quality"}


def rison_eq(column: str, value: str) -> str:
    return urllib.parse.quote(f"(filters:!((col:{column},opr:eq,value:'{value}')),page_size:100)")


class Api:
    """Superset's REST API as one user: JWT login, a cookie jar for the CSRF session."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""
        self.csrf = ""
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.last_headers: Any = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        req = api_request(self.base + path, method, body, self.token)
        if self.csrf and method != "GET":
            req.add_header("X-CSRFToken", self.csrf)
            req.add_header("Referer", self.base + "/")
        try:
            with self.opener.open(req, timeout=120) as resp:
                self.last_headers = resp.headers
                raw = resp.read()
                try:
                    return resp.status, json.loads(raw or b"null")
                except ValueError:
                    return resp.status, raw.decode("utf-8", "replace")
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

    def charts_of(self, dashboard_id: int | str) -> list[dict[str, Any]]:
        status, body = self.call("GET", f"/api/v1/dashboard/{dashboard_id}/charts")
        assert status == 200, body
        return body["result"]

    def dataset_id(self, table_name: str) -> int:
        status, body = self.call("GET", f"/api/v1/dataset/?q={rison_eq('table_name', table_name)}")
        assert status == 200 and body["result"], (table_name, body)
        return body["result"][0]["id"]

    def query(
        self,
        dataset_id: int,
        columns: list[str],
        metric_sql: str | None = "COUNT(*)",
        filters: list[dict[str, Any]] | None = None,
    ) -> tuple[int, Any]:
        """Chart data for an ad-hoc query on a dataset (as Explore would send it)."""
        metrics = (
            [{"expressionType": "SQL", "sqlExpression": metric_sql, "label": "n"}]
            if metric_sql
            else []
        )
        query = {"columns": columns, "metrics": metrics, "row_limit": 10000}
        if filters:
            query["filters"] = filters
        return self.call(
            "POST",
            "/api/v1/chart/data",
            {
                "datasource": {"id": dataset_id, "type": "table"},
                "force": True,
                "queries": [query],
                "result_format": "json",
                "result_type": "full",
            },
        )


def served_texts(english: set[str]) -> set[str]:
    """Texts of the dashboards as the served Superset shows them: the test session imports
    the bundle in the default language (settings.yml dashboards.language)."""
    from dashboards.server.formats import DEFAULT_LANGUAGE
    from dashboards.spec.i18n import catalogue

    cat = catalogue(DEFAULT_LANGUAGE)
    return {cat.get(text, text) for text in english}


@dataclass
class Served:
    """A Superset server started by ``superset.start`` on a copy of the demo warehouse."""

    base: str
    creds: superset.SupersetCredentials
    state: Path
    warehouse: Path
    proc: subprocess.Popen
    demo: Any  # tests.conftest.Built
    data_docs_url: str
    #: secrets that were in the environment of the process that started the server
    canaries: tuple[str, ...] = ()

    def admin(self) -> Api:
        api = Api(self.base)
        api.login(self.creds.username, self.creds.password)
        return api
