"""A small client for Superset's REST API and the served-Superset fixture's data type.

Shared by the server tests (tests/test_superset.py, tests/test_browser.py); the fixture
itself (``served``) is in conftest.py so that one server serves the whole session.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.lib import superset
from pipelines.lib.superset.api import SupersetApi

DASHBOARD_SLUGS = {"executive", "marketing", "sales-funnel", "finance", "data-quality"}


def rison_eq(column: str, value: str) -> str:
    return urllib.parse.quote(f"(filters:!((col:{column},opr:eq,value:'{value}')),page_size:100)")


class Api(SupersetApi):
    """Superset's REST API as one user (`pipelines.lib.superset.api.SupersetApi`: JWT
    login, a cookie jar for the CSRF session), with the lookups the tests need."""

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
