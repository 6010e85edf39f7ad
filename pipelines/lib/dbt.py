"""Where the dbt project is and how it is invoked; shared by Dagster and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from pipelines.lib.config_folder import SEED_DIR_ENV, dbt_seed_path
from pipelines.lib.settings import Settings


def dbt_executable() -> str:
    """The `dbt` of this interpreter's environment (not whatever is first on PATH)."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def guarded_dbt_executable() -> str:
    """`dbt` wrapped so that it is killed when the run that started it dies (Linux
    `setpriv --pdeathsig`); the plain `dbt` where setpriv is missing. The wrapper finds
    the real one in `CRMWH_DBT_REAL` of its environment (`dbt_env`)."""
    guard = Path(__file__).with_name("dbt-guarded")
    if shutil.which("setpriv") is None or not os.access(guard, os.X_OK):
        return dbt_executable()
    return str(guard)


def build_path(settings: Settings) -> Path:
    """The file a run builds into; next to the served one so the swap is an atomic rename."""
    served = settings.warehouse_path
    return served.with_name(served.name + ".build")


def dbt_env(settings: Settings, warehouse: Path) -> dict[str, str]:
    """The environment of a dbt process building `warehouse` (read by profiles.yml and
    dbt_project.yml)."""
    env = dict(os.environ)
    env["CRMWH_DBT_WAREHOUSE"] = str(warehouse)
    env["CRMWH_DBT_THREADS"] = str(settings.section("dbt").get("threads", 1))
    env["CRMWH_DUCKDB_MEMORY_LIMIT"] = str(settings.section("duckdb").get("memory_limit", "2GB"))
    env["CRMWH_DUCKDB_THREADS"] = str(settings.section("duckdb").get("threads", 2))
    temp = settings.duckdb_temp_dir
    temp.mkdir(parents=True, exist_ok=True)
    env["CRMWH_DUCKDB_TEMP_DIRECTORY"] = str(temp)
    # the seeds in force: the shipped ones, overlaid by a configuration folder's tables/
    # (a path relative to the project: see dbt_seed_path)
    if settings.config_dir is None:
        env.pop(SEED_DIR_ENV, None)
    else:
        env[SEED_DIR_ENV] = dbt_seed_path(settings)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env["CRMWH_DBT_REAL"] = dbt_executable()  # for the dbt-guarded wrapper
    return env


def dbt_vars_arg(settings: Settings) -> str:
    return json.dumps(settings.dbt_vars(), ensure_ascii=False)


def dbt_build_args(settings: Settings, full_refresh: bool | None = None) -> list[str]:
    """`dbt build` as a run invokes it (settings.yml `dbt:`): data tests always; unit tests
    (fixed fixtures, independent of the data) only when `run_unit_tests` is true — CI runs
    them (tests/test_dbt_project.py); `full_refresh` (the run's, else settings.yml
    `dbt.full_refresh`) rebuilds the incremental models."""
    dbt = settings.section("dbt")
    if full_refresh is None:
        full_refresh = bool(dbt.get("full_refresh", False))
    args = ["build", "--vars", dbt_vars_arg(settings)]
    if not dbt.get("run_unit_tests", False):
        args += ["--exclude", "resource_type:unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    return args


def manifest_path(settings: Settings) -> Path:
    return settings.dbt_project_dir / "target" / "manifest.json"


def public_marts(manifest: Path) -> frozenset[str]:
    """The models the dbt project declares `access: public` (dbt_project.yml: the marts),
    read from its manifest: the tables dashboards and users may read."""
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"]
    return frozenset(
        node["name"]
        for node in nodes.values()
        if node["resource_type"] == "model" and node.get("access") == "public"
    )


def _newest_source_mtime(project_dir: Path) -> float:
    newest = 0.0
    for sub in ("models", "seeds", "macros", "snapshots", "tests"):
        for p in (project_dir / sub).rglob("*"):
            if p.is_file():
                newest = max(newest, p.stat().st_mtime)
    for name in ("dbt_project.yml", "profiles.yml"):
        p = project_dir / name
        if p.exists():
            newest = max(newest, p.stat().st_mtime)
    return newest


def ensure_manifest(settings: Settings) -> Path:
    """Run `dbt parse` when the manifest is missing or older than the project's files.

    Dagster loads dbt assets from the manifest; parsing once here keeps definitions
    loading fast and never parses dbt at import time.
    """
    target = manifest_path(settings)
    project = settings.dbt_project_dir
    if target.exists() and target.stat().st_mtime >= _newest_source_mtime(project):
        return target
    cmd = [dbt_executable(), "parse", "--project-dir", str(project), "--profiles-dir", str(project),
           "--vars", dbt_vars_arg(settings), "--quiet"]  # fmt: skip
    done = subprocess.run(
        cmd, env=dbt_env(settings, build_path(settings)), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{done.stdout}\n{done.stderr}")
    return target
