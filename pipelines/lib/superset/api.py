"""A small client for Superset's REST API: JWT login, the CSRF token for writes, JSON in and
out. The benchmark and the test suite's client build on it."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request
from typing import Any

from pipelines.lib.superset.layout import SupersetError


def api_request(url: str, method: str, body: Any = None, token: str = "") -> urllib.request.Request:
    """A request to Superset's REST API: ``body`` (if any) sent as JSON, the JWT ``token``
    (if any) as the bearer."""
    req = urllib.request.Request(url, method=method)
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    return req


class SupersetApi:
    """Superset's REST API as one user at ``base`` (``http://host:port``)."""

    def __init__(self, base: str, timeout: float = 120) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.token = ""
        self.csrf = ""
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        self.last_headers: Any = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(HTTP status, the JSON body, else its text) of one request."""
        req = api_request(self.base + path, method, body, self.token)
        if self.csrf and method != "GET":
            req.add_header("X-CSRFToken", self.csrf)
            req.add_header("Referer", self.base + "/")
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                self.last_headers = resp.headers
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            self.last_headers = exc.headers
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def login(self, username: str, password: str) -> None:
        """Log in (database users) and fetch the CSRF token writes need; `SupersetError`
        naming the status when refused."""
        status, body = self.call(
            "POST",
            "/api/v1/security/login",
            {"username": username, "password": password, "provider": "db", "refresh": False},
        )
        if status != 200 or not isinstance(body, dict):
            raise SupersetError(f"login to {self.base} as {username} failed: HTTP {status}")
        self.token = body["access_token"]
        status, body = self.call("GET", "/api/v1/security/csrf_token/")
        if status != 200 or not isinstance(body, dict):
            raise SupersetError(f"no CSRF token from {self.base}: HTTP {status}")
        self.csrf = body["result"]

    def dashboards(self) -> list[dict[str, Any]]:
        status, body = self.call("GET", "/api/v1/dashboard/?q=(page_size:100)")
        if status != 200:
            raise SupersetError(f"dashboard list: HTTP {status}")
        return body["result"]

    def charts_of(self, dashboard_id: int | str) -> list[dict[str, Any]]:
        status, body = self.call("GET", f"/api/v1/dashboard/{dashboard_id}/charts")
        if status != 200:
            raise SupersetError(f"charts of dashboard {dashboard_id}: HTTP {status}")
        return body["result"]
