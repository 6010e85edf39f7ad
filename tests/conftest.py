"""Shared fixtures: a warehouse built by the real CLI from generated sample exports."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CRMWH = [sys.executable, "-m", "pipelines.cli"]


@dataclass
class Built:
    landing: Path
    data: Path
    warehouse: Path
    state: Path
    env: dict[str, str]
    first_run: subprocess.CompletedProcess


def crmwh(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the real `crmwh` command line in a subprocess."""
    return subprocess.run(
        [*CRMWH, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("demo")
    landing, data, warehouse, state = (
        base / "landing",
        base / "data",
        base / "warehouse.duckdb",
        base / "state",
    )
    env = dict(os.environ, CRMWH_PATHS__STATE=str(state), CRMWH_PATHS__DATA=str(data))
    gen = crmwh(["demo-data", "--out", str(landing), "--seed", "7"], env)
    assert gen.returncode == 0, gen.stderr
    # generous: on a loaded 2-core CI machine a full run has taken over 15 minutes
    run = crmwh(["run", "--landing", str(landing), "--warehouse", str(warehouse)], env, 3600)
    assert run.returncode == 0, f"crmwh run failed:\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
    return Built(landing, data, warehouse, state, env, run)


@pytest.fixture(scope="session")
def built_warehouse(demo_build: Built) -> Path:
    """Path to a warehouse.duckdb built by `crmwh run` on small sample exports."""
    return demo_build.warehouse
