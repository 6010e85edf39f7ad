"""Shared fixtures: a warehouse built by the real CLI from generated sample exports."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from crmwh_tools.bench import free_port
from tests.superset_api import Served

ROOT = Path(__file__).resolve().parents[1]
CRMWH = [sys.executable, "-m", "pipelines.cli"]
#: SQL Lab time limit (seconds) of the session's served Superset
SQLLAB_TEST_TIMEOUT = 15

# The fast tier (`make check`, `pytest -m "not slow"`): every test that needs none of the
# session's expensive fixtures (a demo run, a Superset server, a Dagster UI server) and is
# not marked slow by hand. Modules that start whole pipelines, servers, browsers or Spark
# are slow as a whole. The dbt tests of the fast tier share one build (`empty_dbt_build`).
EXPENSIVE_FIXTURES = {"demo_build", "built_warehouse", "served", "dagster_ui"}
SLOW_MODULES = {
    "test_bench", "test_browser", "test_faults", "test_reports", "test_spark_marts",
    "test_incremental", "test_pipeline", "test_publish", "test_onboarding",
}  # fmt: skip


#: the session's dbt build on empty raw views: started in the background as the session
#: starts (when a selected test uses it); the modules using it run last, after the others
DBT_BUILD_FIXTURE = "empty_dbt_build"


def _uses(item: pytest.Item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        fixtures = set(getattr(item, "fixturenames", ()))
        if module in SLOW_MODULES or fixtures & EXPENSIVE_FIXTURES:
            item.add_marker(pytest.mark.slow)
    late = {item.module for item in items if _uses(item, DBT_BUILD_FIXTURE)}
    items[:] = [i for i in items if i.module not in late] + [i for i in items if i.module in late]


@pytest.fixture
def settings_env(tmp_path: Path) -> Iterator[Path]:
    """The pipeline's settings pointed (``CRMWH_PATHS__*``) at a landing folder, a data
    folder, a state folder and a warehouse under tmp_path; the whole environment is
    restored afterwards (code under test may set variables of its own)."""
    saved = dict(os.environ)
    for key, path in (
        ("LANDING", "landing"), ("DATA", "data"), ("STATE", "state"),
        ("WAREHOUSE", "warehouse.duckdb"),
    ):  # fmt: skip
        os.environ[f"CRMWH_PATHS__{key}"] = str(tmp_path / path)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


@dataclass
class Built:
    landing: Path
    data: Path
    warehouse: Path
    state: Path
    env: dict[str, str]
    first_run: subprocess.CompletedProcess


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    """The rows of `sql` on a warehouse file opened read-only (and closed again)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def crmwh(args: list[str], env: dict[str, str], timeout: int = 2400) -> subprocess.CompletedProcess:
    """Run the real `crmwh` command line in a subprocess."""
    return subprocess.run(
        [*CRMWH, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Built:
    reuse = os.environ.get("CRMWH_TEST_DEMO_DIR")
    if reuse:  # a developer's shortcut: a copy of an earlier session's demo0 directory
        base = Path(reuse)
        env = dict(
            os.environ, CRMWH_PATHS__STATE=str(base / "state"), CRMWH_PATHS__DATA=str(base / "data")
        )
        assert (base / "warehouse.duckdb").exists(), f"{base}: no warehouse.duckdb"
        done = subprocess.CompletedProcess(["reused"], 0, "", "")
        return Built(
            base / "landing", base / "data", base / "warehouse.duckdb", base / "state", env, done
        )
    base = tmp_path_factory.mktemp("demo")
    landing, data, warehouse, state = (
        base / "landing",
        base / "data",
        base / "warehouse.duckdb",
        base / "state",
    )
    env = dict(os.environ, CRMWH_PATHS__STATE=str(state), CRMWH_PATHS__DATA=str(data))
    # the end date pinned: the tests assert the files and figures of that year
    gen = crmwh(
        ["demo-data", "--out", str(landing), "--seed", "7", "--end-date", "2026-11-20"], env
    )
    assert gen.returncode == 0, gen.stderr
    # generous: on a loaded 2-core CI machine a full run has taken over 15 minutes
    run = crmwh(["run", "--landing", str(landing), "--warehouse", str(warehouse)], env, 3600)
    assert run.returncode == 0, f"crmwh run failed:\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
    return Built(landing, data, warehouse, state, env, run)


def dbt_command(args: list[str], target: Path) -> list[str]:
    """The real `dbt` on the project, writing its target/ to `target`."""
    from pipelines.lib.dbt import dbt_executable

    project = str(ROOT / "dbt_project")
    return [
        dbt_executable(), *args,
        "--project-dir", project, "--profiles-dir", project, "--target-path", str(target),
    ]  # fmt: skip


def dbt(args: list[str], env: dict[str, str], target: Path) -> subprocess.CompletedProcess:
    """Run `dbt_command` and wait for it."""
    cmd = dbt_command(args, target)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@dataclass
class DbtBuild:
    """The whole dbt project built once on empty raw views (see ``empty_dbt_build``)."""

    warehouse: Path
    target: Path
    env: dict[str, str]
    vars: str
    build: subprocess.CompletedProcess

    def dbt(self, args: list[str]) -> subprocess.CompletedProcess:
        """Another dbt command on the built project with the build's vars, target and
        environment, so that dbt reuses its parse (partial parsing) instead of parsing
        the project again."""
        return dbt([*args, "--vars", self.vars], self.env, self.target)

    @property
    def manifest_file(self) -> Path:
        """The build's manifest.json, kept apart: later commands rewrite target/."""
        return self.target.with_name("build") / "manifest.json"

    def manifest(self) -> dict:
        return json.loads(self.manifest_file.read_text(encoding="utf-8"))

    def results(self) -> list[dict]:
        """The build's run_results.json (one entry per node it ran), kept apart."""
        kept = self.target.with_name("build") / "run_results.json"
        return json.loads(kept.read_text(encoding="utf-8"))["results"]


@pytest.fixture(scope="session", autouse=True)
def _empty_dbt_build_job(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], DbtBuild] | None]:
    """Starts `empty_dbt_build`'s `dbt build` in the background as the session starts, if a
    selected test uses it, and yields the function that waits for it; the tests before
    the modules using it (run last) run meanwhile."""
    if not any(_uses(item, DBT_BUILD_FIXTURE) for item in request.session.items):
        yield None
        return
    from pipelines.lib.dbt import dbt_env
    from pipelines.lib.settings import SETTINGS_FILE, load_settings

    base = tmp_path_factory.mktemp("dbt_empty")
    warehouse, data, target = base / "warehouse.duckdb", base / "data", base / "target"
    data.mkdir()
    made = subprocess.run(
        [sys.executable, "-m", "pipelines.lib.warehouse", str(warehouse),
         "--data", str(data), "--sources", str(ROOT / "sources")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    settings = load_settings(SETTINGS_FILE, environ={})
    env = {**dbt_env(settings, warehouse), "DBT_LOG_PATH": str(base / "logs")}
    # two models at a time: settings.yml's one thread keeps a large build within memory;
    # on empty raw views every model is tiny
    env["CRMWH_DBT_THREADS"] = "2"
    dbt_vars = json.dumps({**settings.dbt_vars(), "test_fixtures": True}, ensure_ascii=False)
    cmd = dbt_command(["build", "--vars", dbt_vars], target)
    out, err = base / "build.out", base / "build.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = None
        if made.returncode == 0:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)

    def finish() -> DbtBuild:
        assert made.returncode == 0 and proc is not None, made.stderr
        proc.wait(timeout=900)
        build = subprocess.CompletedProcess(
            cmd, proc.returncode, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")
        )
        (base / "build").mkdir(exist_ok=True)
        for name in ("manifest.json", "run_results.json"):
            if (target / name).exists():
                shutil.copy2(target / name, base / "build" / name)
        return DbtBuild(warehouse, target, env, dbt_vars, build)

    try:
        yield finish
    finally:
        if proc is not None and proc.poll() is None:  # the session ended before a test waited
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def empty_dbt_build(_empty_dbt_build_job: Callable[[], DbtBuild] | None) -> DbtBuild:
    """`dbt build` of the whole project, with its unit tests and test fixtures (var
    `test_fixtures`), on a warehouse whose raw views are empty: the contract between
    ingestion and dbt. Built once per session, in the background from the session's
    start, and shared by the dbt tests of the fast tier (the project, the conformed
    dimensions, docs, macros). Its target/ and logs/ live in a temporary directory, never
    in dbt_project/target (the manifest Dagster reads)."""
    assert _empty_dbt_build_job is not None, "the session's dbt build was not started"
    return _empty_dbt_build_job()


@pytest.fixture(scope="session")
def built_warehouse(demo_build: Built) -> Path:
    """Path to a warehouse.duckdb built by `crmwh run` on small sample exports."""
    return demo_build.warehouse


@pytest.fixture(scope="session")
def served(demo_build: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Superset prepared twice (as every `crmwh serve` does) and started on a copy of the
    demo warehouse (so the refresh test can publish over it), serving the GX Data Docs of
    the demo run at /crmwh/data-docs/ as `crmwh serve` does. One server for the whole
    session: preparing one costs a minute or more."""
    from pipelines.lib import superset
    from pipelines.lib.quality import docs_dir

    work = tmp_path_factory.mktemp("superset")
    warehouse = work / "warehouse.duckdb"
    shutil.copy2(demo_build.warehouse, warehouse)
    state = work / "state"
    t0 = time.monotonic()
    creds = superset.prepare(warehouse, state)
    again = superset.prepare(warehouse, state)
    assert (again.username, again.password) == (creds.username, creds.password)
    port = free_port()
    t1 = time.monotonic()
    # secrets in the starting process's environment must not reach the server's
    canaries = {"CRMWH_USER_PASSWORD": f"canary-{os.urandom(8).hex()}"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in canaries.items():
            mp.setenv(name, value)
        # a short SQL Lab limit, so the time-limit test waits seconds, not a minute
        mp.setenv("CRMWH_SQLLAB_TIMEOUT", str(SQLLAB_TEST_TIMEOUT))
        proc = superset.start(warehouse, state, port=port, data_docs_dir=docs_dir(demo_build.data))
    print(f"superset: prepare x2 {t1 - t0:.1f}s, start {time.monotonic() - t1:.1f}s")
    try:
        yield Served(
            f"http://127.0.0.1:{port}", creds, state, warehouse, proc, demo_build,
            superset.DEFAULT_DATA_DOCS_URL, tuple(canaries.values()),
        )  # fmt: skip
    finally:
        superset.stop(proc)
    assert proc.poll() is not None


@dataclass(frozen=True)
class ServedUser:
    """A user the served tests log in as; ``manager`` scopes it to ``busiest_manager``."""

    roles: tuple[str, ...]
    password: str
    manager: bool = False


_THROTTLE_PASSWORD = "Throttle-Pass-" + secrets.token_hex(4)
_DOCS_PASSWORD = "Docs-Pass-" + secrets.token_hex(4)
_HOSTILE_PASSWORD = "Hostile-Test-Pass-7"

#: Every user the served tests log in as, by name. ``served_users`` creates them all in one
#: Superset process (each process loads the whole Superset app, seconds per user); the
#: tests of `crmwh users` itself add their users through the command line.
SERVED_USERS: dict[str, ServedUser] = {
    # tests/test_superset.py
    "t_analyst": ServedUser(("Analyst",), "Role-Test-Pass-1"),
    "t_exec": ServedUser(("Executive",), "Role-Test-Pass-1"),
    "t_finance": ServedUser(("Finance",), "Role-Test-Pass-1"),
    "t_manager": ServedUser(("Manager",), "Role-Test-Pass-1", manager=True),
    "t_nobody": ServedUser(("Manager",), "Role-Test-Pass-1"),  # no manager id: deny by default
    "t_analyst2": ServedUser(("Analyst",), "Role-Test-Pass-2"),
    # tests/test_security.py
    "h_manager": ServedUser(("Manager",), _HOSTILE_PASSWORD, manager=True),
    "h_nobody": ServedUser(("Manager",), _HOSTILE_PASSWORD),
    "h_analyst": ServedUser(("Analyst",), _HOSTILE_PASSWORD),
    "h_sqllab_executive": ServedUser(("Executive",), _HOSTILE_PASSWORD),
    "h_sqllab_finance": ServedUser(("Finance",), _HOSTILE_PASSWORD),
    "h_sqllab_manager": ServedUser(("Manager",), _HOSTILE_PASSWORD),
    "h_slow": ServedUser(("Analyst",), _HOSTILE_PASSWORD),
    # tests/test_security_services.py
    "t_throttled": ServedUser(("Executive",), _THROTTLE_PASSWORD),
    "t_bystander": ServedUser(("Executive",), _THROTTLE_PASSWORD),
    "t_form": ServedUser(("Executive",), _THROTTLE_PASSWORD),
    "t_docs_mgr": ServedUser(("Manager",), _DOCS_PASSWORD),
    "t_docs_exec": ServedUser(("Executive",), _DOCS_PASSWORD),
    "t_docs_fin": ServedUser(("Finance",), _DOCS_PASSWORD),
}


def busiest_manager(warehouse: Path) -> str:
    """The manager id with the most deals (ties: the smallest id)."""
    return query(
        warehouse,
        "select manager_id from marts.fct_deal where manager_id is not null"
        " group by 1 order by count(*) desc, 1 limit 1",
    )[0][0]


@pytest.fixture(scope="session")
def served_users(served: Served) -> dict[str, ServedUser]:
    """``SERVED_USERS`` created on the session's server, in one Superset process."""
    from pipelines.lib import superset

    manager_id = busiest_manager(served.warehouse)
    superset.ensure_users(
        served.state,
        [
            superset.UserSpec(
                name, user.password, user.roles, manager_id=manager_id if user.manager else None
            )
            for name, user in SERVED_USERS.items()
        ],
    )
    return SERVED_USERS
