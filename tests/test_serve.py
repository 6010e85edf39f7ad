"""`crmwh serve`'s process list: the Procfile it prints and writes is what it runs, each
process gets the environment it must (no secret anywhere; the reports mode's variables in
Superset's processes only), and honcho stops the whole list when one process ends or
when serve is asked to stop. Real processes, real honcho; no Superset server."""

from __future__ import annotations

import http.server
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from honcho.environ import parse_procfile

from pipelines.lib import reports, serve, superset
from pipelines.lib.child_env import is_secret
from pipelines.lib.settings import load_settings
from tests.conftest import CRMWH, ROOT

CANARIES = {
    "SUPERSET_ADMIN_PASSWORD": "canary-admin-7f3a",
    "CRMWH_NOTIFICATIONS__SMTP_PASSWORD": "canary-smtp-91bc",
    "CRMWH_TEST_BROKER": "redis://:canary-url-5d2e@127.0.0.1:1/0",
}
REPORTS_VARS = {"CRMWH_SUPERSET_REPORTS", "CRMWH_REPORTS_DIR", "CRMWH_SUPERSET_DATABASE_URI",
                "CRMWH_SUPERSET_REDIS_URL", "CRMWH_SUPERSET_BASEURL"}  # fmt: skip
MODES = {
    (): ["superset", "dagster"],
    ("--no-dagster",): ["superset"],
    ("--reports",): ["redis", "superset", "celery-worker", "celery-beat", "dagster"],
    ("--reports", "--no-dagster", "--dagster-write"): [
        "redis", "superset", "celery-worker", "celery-beat",
    ],
}  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A parent environment with secrets, state and data in a temporary folder."""
    return dict(
        os.environ, **CANARIES,
        CRMWH_PATHS__STATE=str(tmp_path / "state"), CRMWH_PATHS__DATA=str(tmp_path / "data"),
    )  # fmt: skip


def _listed(flags: tuple[str, ...], env: dict[str, str]) -> list[serve.Service]:
    """The process list `crmwh serve <flags>` runs, built as serve builds it, in ``env``."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        settings = load_settings()
        reports_env = None
        if "--reports" in flags:
            reports_env = reports.reports_env(
                settings, reports.reports_dir(settings), superset_port=18123,
                pg_port=15433, redis_port=16380,
            )  # fmt: skip
        return serve.services(
            settings, port=18123, dagster_port=13123, dagster="--no-dagster" not in flags,
            dagster_write="--dagster-write" in flags, reports_env=reports_env,
        )  # fmt: skip
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _apply(command: str, base: dict[str, str]) -> tuple[str, dict[str, str], list[str]]:
    """What a shell does with a Procfile line: (working folder, environment, argv)."""
    words = shlex.split(command)
    assert words[:4] == ["exec", "env", "-C", words[3]], command
    cwd, rest, env = words[3], words[4:], dict(base)
    while rest and (rest[0] == "-u" or "=" in rest[0]):
        if rest[0] == "-u":
            env.pop(rest[1], None)
            rest = rest[2:]
        else:
            name, _, value = rest[0].partition("=")
            env[name] = value
            rest = rest[1:]
    return cwd, env, rest


@pytest.mark.parametrize("flags", list(MODES), ids=lambda f: " ".join(f) or "default")
def test_printed_procfile_is_the_process_list_serve_runs(
    flags: tuple[str, ...], env: dict[str, str], tmp_path: Path
) -> None:
    out = subprocess.run(
        [*CRMWH, "serve", "--print-procfile", "--port", "18123", "--dagster-port", "13123",
         "--pg-port", "15433", "--redis-port", "16380", *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    for made in ("Procfile", "superset", "reports"):  # nothing started, no Procfile written
        assert not (tmp_path / "state" / made).exists(), made
    printed = parse_procfile(out.stdout).processes  # honcho's own Procfile reader
    assert list(printed) == MODES[flags]
    listed = _listed(flags, env)
    assert [s.name for s in listed] == MODES[flags]
    assert out.stdout == serve.procfile(listed)
    for svc in listed:
        assert printed[svc.name] == svc.command()
        # the line turns the parent's environment into exactly the process's one
        cwd, child_env, argv = _apply(printed[svc.name], env)
        assert (Path(cwd), child_env, tuple(argv)) == (svc.cwd, svc.environ, svc.argv)
        for name, value in svc.env.items():
            assert not is_secret(name, value), (svc.name, name)
        assert not set(CANARIES.values()) & set(svc.env.values()), svc.name
        assert not any(v in out.stdout for v in CANARIES.values())
        is_superset = svc.name in {"superset", "celery-worker", "celery-beat"}
        if "--reports" in flags:
            assert (REPORTS_VARS <= set(svc.env)) == is_superset, svc.name
        assert not REPORTS_VARS & set(svc.env) or is_superset, svc.name
        assert ("SUPERSET_CONFIG_PATH" in svc.env) == is_superset, svc.name
    by_name = {s.name: s for s in listed}
    assert by_name["superset"].argv == tuple(superset.server_command(18123))
    assert by_name["superset"].env["CRMWH_DATA_DOCS_DIR"].startswith(str(tmp_path / "data"))
    if "dagster" in by_name:
        ui = by_name["dagster"]
        assert ui.argv[ui.argv.index("-p") + 1] == "13123"
        assert ("--read-only" in ui.argv) != ("--dagster-write" in flags)
        assert ui.env["DAGSTER_HOME"] == str(tmp_path / "state" / "dagster")
    if "--reports" in flags:
        web = by_name["superset"].env
        assert web["CRMWH_SUPERSET_REDIS_URL"] == "redis://127.0.0.1:16380/0"
        assert ":15433/" in web["CRMWH_SUPERSET_DATABASE_URI"]
        assert web["CRMWH_SUPERSET_BASEURL"] == "http://127.0.0.1:18123/"
        assert by_name["redis"].argv[-1] == str(tmp_path / "state" / "reports" / "redis.conf")
        assert "worker" in by_name["celery-worker"].argv
        assert "beat" in by_name["celery-beat"].argv


# --------------------------------------------------------------------------- honcho


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health() -> Iterator[str]:
    """A stand-in for Superset's /health (the web server itself is tested elsewhere)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _service(name: str, code: str, tmp_path: Path, base: dict[str, str]) -> serve.Service:
    env = {k: v for k, v in base.items() if not is_secret(k, v)}
    env["CRMWH_TEST_SERVICE"] = name
    return serve.Service(name, (sys.executable, "-c", code), tmp_path, env, base,
                         tmp_path / f"{name}.log")  # fmt: skip


def pgids_alive(pgids: set[int]) -> list[int]:
    """The live processes (not zombies) of the process groups ``pgids``."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) in pgids:  # state, ppid, pgrp
            alive.append(int(stat.parent.name))
    return alive


# writes its pid and environment, starts a child in its own group, then waits
WAITER = (
    "import json, os, subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "print(json.dumps({'pid': os.getpid(), 'pgid': os.getpgid(0), 'env': dict(os.environ)}),"
    " flush=True); time.sleep(600)"
)


def _started(svc: serve.Service) -> dict:
    import json

    return json.loads(svc.log.read_text().splitlines()[0])


def test_sigterm_stops_every_process_group_and_serve_exits_0(
    tmp_path: Path, env: dict[str, str], health: str
) -> None:
    listed = [_service(n, WAITER, tmp_path, env) for n in ("one", "two")]
    steps: list[str] = []
    before = signal.getsignal(signal.SIGTERM)

    def after_health(stopping: threading.Event) -> None:
        steps.append("health")
        for svc in listed:  # both have started (and written their line)
            serve._wait(lambda s=svc: s.log.exists() and s.log.read_text() != "", 120, svc.name)

    def ready() -> None:
        steps.append("ready")
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill <serve>` or systemd would

    assert serve.run(listed, health, after_health, ready) == 0
    assert steps == ["health", "ready"]
    assert signal.getsignal(signal.SIGTERM) is before
    seen = [_started(svc) for svc in listed]
    for svc, info in zip(listed, seen, strict=True):
        assert info["env"] == svc.environ  # exactly the declared environment
        assert info["pgid"] == info["pid"] != os.getpgid(0)  # its own process group
    assert pgids_alive({info["pgid"] for info in seen}) == []


def test_one_process_ending_stops_the_others_and_serve_exits_non_zero(
    tmp_path: Path, env: dict[str, str], health: str, capsys: pytest.CaptureFixture[str]
) -> None:
    waiter = _service("waiter", WAITER, tmp_path, env)
    quitter = _service(
        "quitter",
        "import pathlib, sys, time\n"
        f"log = pathlib.Path({str(waiter.log)!r})\n"
        "while not log.exists() or not log.read_text(): time.sleep(0.1)\n"
        "print('quitter: giving up', flush=True)\n"
        "sys.exit(3)",
        tmp_path,
        env,
    )
    assert serve.run([waiter, quitter], health, lambda _: None, lambda: None) == 3
    err = capsys.readouterr().err
    assert "a process stopped (rc=3)" in err
    assert f"--- quitter: {quitter.log}\nquitter: giving up" in err  # its last lines
    assert f"--- waiter: {waiter.log}" in err
    assert pgids_alive({_started(waiter)["pgid"]}) == []


def test_a_step_failing_after_start_stops_the_list_and_serve_exits_1(
    tmp_path: Path, env: dict[str, str], health: str, capsys: pytest.CaptureFixture[str]
) -> None:
    waiter = _service("waiter", WAITER, tmp_path, env)

    def after_health(stopping: threading.Event) -> None:
        serve._wait(lambda: waiter.log.exists() and waiter.log.read_text() != "", 120, "waiter")
        raise reports.ReportsError("applying reports.yaml failed: no such dashboard")

    assert serve.run([waiter], health, after_health, lambda: None) == 1
    assert "no such dashboard" in capsys.readouterr().err
    assert pgids_alive({_started(waiter)["pgid"]}) == []
