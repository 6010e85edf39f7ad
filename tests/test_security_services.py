"""The served services against a hostile client: the Dagster UI's request guard and
read-only mode, secrets kept out of server environments, the secret-key rules, the
login throttle, and the Data Docs behind Superset's login.

The Dagster test starts the real `dagster-webserver` as `crmwh serve` does (read-only,
behind `pipelines.lib.dagster_ui`) on a free port with an empty instance: it needs the
definitions module only, so it is in the fast tier. The Superset tests use the session's
`served` server.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import runpy
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crmwh_tools.bench import free_port
from pipelines.lib import superset
from pipelines.lib.child_env import without_secrets
from pipelines.lib.quality import docs_dir
from pipelines.lib.settings import load_settings
from tests.conftest import ServedUser
from tests.superset_api import Api, Served

WEB_SECURITY = superset.SERVER_DIR / "web_security.py"


# --------------------------------------------------------------------------- processes


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (by parent pid, from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def environ_of(pid: int) -> dict[str, str]:
    """The environment a process was started with (``/proc/<pid>/environ``)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode("utf-8", "replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def assert_no_secret_in_environ(pid: int, values: list[str]) -> int:
    """No process of ``pid``'s tree has a secret-named variable or one of ``values`` in
    its environment; returns how many processes were looked at."""
    pids = process_tree(pid)
    for p in pids:
        try:
            env = environ_of(p)
        except OSError:  # ended meanwhile
            continue
        names = [k for k, v in env.items() if without_secrets({k: v}) == {}]
        assert not names, f"pid {p} has secrets in its environment: {names}"
        blob = "\0".join(f"{k}={v}" for k, v in env.items())
        for value in values:
            assert value not in blob, f"pid {p} has a secret value in its environment"
    return len(pids)


# --------------------------------------------------------------------------- environments


def test_child_environments_leave_secrets_out() -> None:
    base = {
        "PATH": "/usr/bin",
        "SUPERSET_ADMIN_PASSWORD": "x",
        "CRMWH_USER_PASSWORD": "x",
        "CRMWH_NOTIFICATIONS__SMTP_PASSWORD": "x",
        "PGPASSWORD": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "GITHUB_TOKEN": "x",
        "DATABASE_URL": "postgresql://crmwh:hunter22@db/superset",
        "HTTPS_PROXY": "http://proxy:3128",
        "CRMWH_PATHS__STATE": "/srv/state",
    }
    env = without_secrets(base, DAGSTER_HOME="/srv/state/dagster")
    assert env == {
        "PATH": "/usr/bin",
        "HTTPS_PROXY": "http://proxy:3128",
        "CRMWH_PATHS__STATE": "/srv/state",
        "DAGSTER_HOME": "/srv/state/dagster",
    }
    sdir = Path("/nonexistent/superset")
    os.environ["CRMWH_USER_PASSWORD"] = "canary-password"
    try:
        assert "CRMWH_USER_PASSWORD" not in superset._superset_env(sdir)
    finally:
        del os.environ["CRMWH_USER_PASSWORD"]


def test_reports_configuration_reads_passwords_from_files(tmp_path: Path) -> None:
    """The reports mode's environment names the PostgreSQL and Redis servers without
    passwords; Superset's configuration (run in its own venv) reads them from files."""
    rdir = tmp_path / "reports"
    rdir.mkdir()
    pw = {name: secrets.token_hex(24) for name in ("postgres", "redis", "smtp")}
    for name, value in pw.items():
        (rdir / f"{name}_password").write_text(value + "\n")
    superset._ensure_secret_key(tmp_path)
    env = {
        "PATH": os.environ["PATH"],
        "CRMWH_SUPERSET_STATE": str(tmp_path),
        "CRMWH_SUPERSET_REPORTS": "1",
        "CRMWH_REPORTS_DIR": str(rdir),
        "CRMWH_SUPERSET_DATABASE_URI": "postgresql+psycopg2://crmwh@127.0.0.1:5999/superset",
        "CRMWH_SUPERSET_REDIS_URL": "redis://127.0.0.1:6999/0",
        "CRMWH_SUPERSET_BASEURL": "http://127.0.0.1:8088/",
        "CRMWH_REPORTS_EXECUTOR": "admin",
    }
    assert without_secrets(env) == env, "the reports environment must hold no secret"
    script = (
        "import json, runpy, sys; c = runpy.run_path(sys.argv[1]); print(json.dumps({k: c[k]"
        " for k in ('SQLALCHEMY_DATABASE_URI', 'RATELIMIT_STORAGE_URI', 'SMTP_PASSWORD')}))"
    )
    out = subprocess.run(
        [str(superset.venv_dir() / "bin" / "python"), "-c", script, str(superset.CONFIG_FILE)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    config = json.loads(out.stdout.strip().splitlines()[-1])
    assert config == {
        "SQLALCHEMY_DATABASE_URI": (
            f"postgresql+psycopg2://crmwh:{pw['postgres']}@127.0.0.1:5999/superset"
        ),
        "RATELIMIT_STORAGE_URI": f"redis://:{pw['redis']}@127.0.0.1:6999/0",
        "SMTP_PASSWORD": pw["smtp"],
    }


# --------------------------------------------------------------------------- secret key

WEAK_KEYS = {
    "a" * 32: "distinct characters",
    "ab" * 24: "distinct characters",
    "0123456789abcdef" * 3: "repeated pattern",
    "Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3": "repeated pattern",
    "abcdefghijklmnopqrstuvwxyz0123456789": "consecutive",
    "x" * 24 + "9f3b6c2e1d": "bits each",
    "s3cr3t-but-short": "at least 32",
}


@pytest.mark.parametrize("key", list(WEAK_KEYS))
def test_config_refuses_a_weak_secret_key(tmp_path: Path, monkeypatch, key: str) -> None:
    monkeypatch.setenv("CRMWH_SUPERSET_STATE", str(tmp_path))
    (tmp_path / "secret_key").write_text(key + "\n")
    with pytest.raises(RuntimeError, match="Refusing to start Superset") as info:
        runpy.run_path(str(superset.CONFIG_FILE))
    assert WEAK_KEYS[key] in str(info.value) and str(tmp_path / "secret_key") in str(info.value)


def test_generated_secret_keys_pass() -> None:
    rules = runpy.run_path(str(WEB_SECURITY))
    makers = {
        "crmwh": lambda: secrets.token_urlsafe(48),
        "openssl rand -base64 42": lambda: base64.b64encode(os.urandom(42)).decode(),
        "128-bit hex": lambda: secrets.token_hex(16),
    }
    for name, make in makers.items():
        refused = [k for k in (make() for _ in range(2000)) if rules["secret_key_problem"](k)]
        assert not refused, (name, refused[:3])


# --------------------------------------------------------------------------- Dagster UI


@pytest.fixture(scope="module")
def dagster_ui(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[int, int, list[str]]]:
    """The Dagster UI started by `crmwh serve`'s own function (read-only), on an empty
    instance, with secrets in the parent's environment; yields (port, pid, the secrets)."""
    from pipelines.lib import serve

    work = tmp_path_factory.mktemp("dagster_ui")
    canaries = {
        "SUPERSET_ADMIN_PASSWORD": "canary-admin-" + secrets.token_hex(8),
        "CRMWH_USER_PASSWORD": "canary-user-" + secrets.token_hex(8),
        "CRMWH_TEST_BROKER": f"redis://:canary-{secrets.token_hex(8)}@127.0.0.1:1/0",
    }
    saved = {k: os.environ.get(k) for k in [*canaries, "CRMWH_PATHS__STATE", "DAGSTER_HOME"]}
    os.environ.update(canaries, CRMWH_PATHS__STATE=str(work / "state"))
    port = free_port()
    try:
        proc = serve.start_dagster_ui(load_settings(), port)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, f"the Dagster UI exited with {proc.returncode}"
            assert time.monotonic() < deadline, "the Dagster UI did not answer within 300s"
            try:
                if _graphql_get(port, "{ version }")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        yield port, proc.pid, list(canaries.values())
    finally:
        superset.stop(proc)


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _graphql_get(port: int, query: str, **headers: str) -> tuple[int, str]:
    return _request(
        port, "GET", "/graphql?" + urllib.parse.urlencode({"query": query}), None, headers
    )


def _graphql_post(port: int, query: str, **headers: str) -> tuple[int, str]:
    body = json.dumps({"query": query}).encode()
    return _request(port, "POST", "/graphql", body, {"Content-Type": "application/json", **headers})


DELETE_RUN = 'mutation { deleteRun(runId: "x") { __typename } }'
SET_NUX_SEEN = "mutation { setNuxSeen }"  # not permission-checked by Dagster
WIPE = 'mutation { wipeAssets(assetPartitionRanges: [{assetKey: {path: ["x"]}}]) { __typename } }'


def test_dagster_ui_refuses_mutations_over_get_and_from_other_sites(dagster_ui) -> None:
    port, _, _ = dagster_ui
    status, body = _graphql_get(port, "{ version }")
    assert status == 200 and '"version"' in body, body
    for mutation in (
        DELETE_RUN,
        SET_NUX_SEEN,
        WIPE,
        "mutation M { setNuxSeen } query Q { version }",
    ):
        status, body = _graphql_get(port, mutation)
        assert status == 405, (mutation, status, body)
        assert "data" not in body
    # a cross-site form or beacon: the query in the URL, a simple content type
    path = "/graphql?" + urllib.parse.urlencode({"query": SET_NUX_SEEN})
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        status, body = _request(port, "POST", path, b"", {"Content-Type": ctype})
        assert status == 415, (ctype, status, body)
    # another site's page (fetch sends its Origin), DNS rebinding (a foreign Host)
    status, _ = _graphql_post(port, "{ version }", Origin="https://evil.example")
    assert status == 403
    status, _ = _graphql_get(port, "{ version }", Host="evil.example:80")
    assert status == 403
    status, _ = _graphql_post(port, "{ version }", Host=f"rebind.evil.example:{port}")
    assert status == 403
    # the UI's own requests pass
    status, body = _graphql_post(port, "{ version }", Origin=f"http://127.0.0.1:{port}")
    assert status == 200 and '"version"' in body
    status, body = _request(port, "GET", "/", headers={"Accept": "text/html"})
    assert status == 200 and "<html" in body.lower()


def test_dagster_ui_is_read_only(dagster_ui) -> None:
    """Same-origin JSON POSTs reach Dagster, which refuses the mutations that change runs
    and assets in read-only mode."""
    port, _, _ = dagster_ui
    for mutation in (DELETE_RUN, WIPE):
        status, body = _graphql_post(port, mutation)
        assert status == 200, body
        assert "UnauthorizedError" in body, body
    launch = (
        "mutation { launchPipelineExecution(executionParams: {selector: {repositoryLocationName:"
        ' "x", repositoryName: "x", jobName: "x"}, mode: "default"}) { __typename } }'
    )
    status, body = _graphql_post(port, launch)
    assert status == 200 and "UnauthorizedError" in body, body


def test_dagster_ui_refuses_foreign_websockets(dagster_ui) -> None:
    port, _, _ = dagster_ui

    def handshake(origin: str) -> str:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: graphql-ws\r\nOrigin: {origin}\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(request.encode())
            return sock.recv(1024).decode("latin-1").split("\r\n", 1)[0]

    assert " 101 " in handshake(f"http://127.0.0.1:{port}")
    assert " 101 " not in handshake("https://evil.example")


def test_dagster_ui_environment_holds_no_secret(dagster_ui) -> None:
    _, pid, canaries = dagster_ui
    assert assert_no_secret_in_environ(pid, canaries) >= 2  # webserver and its code server


# --------------------------------------------------------------------------- Superset


def _login_status(base: str, username: str, password: str) -> int:
    req = urllib.request.Request(
        base + "/api/v1/security/login",
        data=json.dumps(
            {"username": username, "password": password, "provider": "db", "refresh": False}
        ).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        if exc.code == 429:
            assert int(exc.headers["Retry-After"]) > 0
        return exc.code


def test_failed_logins_are_throttled(served: Served, served_users: dict[str, ServedUser]) -> None:
    """40 parallel wrong passwords for one user: a handful are checked (401), the rest
    refused (429) before the password is looked at; the user's correct password is
    refused too until the window has passed, while another user logs in."""
    password = served_users["t_throttled"].password
    for name in ("t_throttled", "t_bystander", "t_form"):
        assert (
            served_users[name].roles == ("Executive",) and served_users[name].password == password
        )
    with ThreadPoolExecutor(max_workers=40) as pool:
        codes = list(
            pool.map(lambda i: _login_status(served.base, "t_throttled", f"wrong-{i}"), range(40))
        )
    assert set(codes) <= {401, 429}, codes
    assert codes.count(429) >= 30, codes
    time.sleep(1.5)  # past Superset's per-second cap on all requests: what refuses is the throttle
    assert _login_status(served.base, "T_Throttled", password) == 429  # case does not help
    assert _login_status(served.base, "t_bystander", password) == 200

    # the form login counts against the same limits
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(served.base + "/login/", timeout=60) as resp:
        page = resp.read().decode("utf-8", "replace")
    # the form's CSRF token, from its hidden field (a bad token never reaches the login)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert found, page[:2000]
    csrf = found.group(1)
    statuses = []
    for i in range(8):
        form = urllib.parse.urlencode(
            {"username": "t_form", "password": f"wrong-{i}", "csrf_token": csrf}
        ).encode()
        req = urllib.request.Request(served.base + "/login/", data=form, method="POST")
        try:
            with opener.open(req, timeout=60) as resp:
                statuses.append(resp.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
    assert statuses[-1] == 429 and statuses.count(429) >= 2, (statuses, page[:200])
    time.sleep(1.5)
    assert _login_status(served.base, "t_form", password) == 429


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            return None

    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_data_docs_only_for_admin_and_finance(
    served: Served, served_users: dict[str, ServedUser]
) -> None:
    docs = served.base + superset.DEFAULT_DATA_DOCS_URL
    status, headers, _ = _get(docs)
    assert status == 302 and "/login/" in headers["Location"], (status, headers)

    users = {"t_docs_mgr": "Manager", "t_docs_exec": "Executive", "t_docs_fin": "Finance"}
    password = served_users["t_docs_fin"].password
    for name, role in users.items():
        assert served_users[name].roles == (role,) and served_users[name].password == password
    tokens = {"admin": served.admin().token}
    for name in users:
        api = Api(served.base)
        api.login(name, password)
        tokens[name] = api.token
    assert _get(docs, "not-a-token")[0] == 401
    for name in ("t_docs_mgr", "t_docs_exec"):
        assert _get(docs, tokens[name])[0] == 403, name
        assert _get(docs + "validations/", tokens[name])[0] == 403, name
    for name in ("admin", "t_docs_fin"):
        status, headers, body = _get(docs, tokens[name])
        assert status == 200 and b"Data Docs" in body, (name, status, body[:200])
        csp = headers["Content-Security-Policy"]
        assert "sandbox allow-scripts" in csp and "allow-same-origin" not in csp, csp
        assert "no-store" in headers["Cache-Control"]
    # a validation page, linked from the index
    pages = sorted((docs_dir(served.demo.data) / "validations").rglob("*.html"))
    assert pages, "the demo run built no validation pages"
    rel = pages[0].relative_to(docs_dir(served.demo.data)).as_posix()
    assert _get(docs + rel, tokens["t_docs_fin"])[0] == 200
    assert _get(docs + rel)[0] == 302
    # GX's stock styles load without a login (a sandboxed page sends no cookies)
    status, _, css = _get(docs + "static/styles/data_docs_default_styles.css")
    assert status == 200 and css


def test_data_docs_stay_inside_their_folder(served: Served) -> None:
    admin = served.admin().token
    root = docs_dir(served.demo.data)
    assert (root / ".gx").is_dir()
    prefix = superset.DEFAULT_DATA_DOCS_URL
    outside = served.state / "superset" / "secret_key"
    link = root / "crmwh-test-link.html"
    link.symlink_to(outside)
    try:
        conn_paths = [
            f"{prefix}../../../../../../etc/passwd",
            f"{prefix}static/../../../../../../etc/passwd",
            f"{prefix}%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            f"{prefix}..%2f..%2f..%2f..%2fetc%2fpasswd",
            f"{prefix}.gx/validations/",
            f"{prefix}static/../.gx/expectations/.ge_store_backend_id",
            f"{prefix}crmwh-test-link.html",
        ]
        port = int(served.base.rsplit(":", 1)[1])
        for path in conn_paths:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.putrequest("GET", path, skip_accept_encoding=True)  # sent as written
            conn.putheader("Authorization", f"Bearer {admin}")
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert resp.status in (400, 404), (path, resp.status, body[:200])
            assert b"root:" not in body and outside.read_bytes().strip() not in body, path
    finally:
        link.unlink()


def test_superset_environment_holds_no_secret(served: Served) -> None:
    """The gunicorn processes started by `superset.start` (with a canary password in the
    environment of the starting process, see conftest) have no secret in theirs."""
    sdir = served.state / "superset"
    values = [(sdir / "secret_key").read_text().strip()]
    if served.creds.generated:
        values.append(served.creds.password)
    values.extend(served.canaries)
    assert assert_no_secret_in_environ(served.proc.pid, values) >= 2  # arbiter and worker
