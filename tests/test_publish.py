"""Atomic publish, kept versions, rollback and the run lock, on real DuckDB files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.publish import list_versions, publish, rollback
from pipelines.run import RunLockedError, run_lock


def build(path: Path, value: int) -> None:
    con = duckdb.connect(str(path))
    con.execute("create schema if not exists marts")
    con.execute(f"create or replace table marts.t as select {value} as v from range(3)")
    con.close()


def served_value(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select max(v) from marts.t").fetchone()[0]
    finally:
        con.close()


def test_publish_swaps_and_keeps_versions_and_rollback_restores(tmp_path: Path) -> None:
    served, b = tmp_path / "warehouse.duckdb", tmp_path / "warehouse.duckdb.build"
    for value in (1, 2, 3, 4):
        build(b, value)
        assert publish(b, served, keep=3) == [("t", 3)]
        assert not b.exists()
        assert served_value(served) == value
    assert len(list_versions(served)) == 3
    rollback(served)
    assert served_value(served) == 3
    rollback(served)
    assert served_value(served) == 2
    with pytest.raises(RuntimeError, match="no earlier version"):
        rollback(served)


def test_reader_holding_the_old_file_is_not_disturbed_by_a_swap(tmp_path: Path) -> None:
    served, b = tmp_path / "warehouse.duckdb", tmp_path / "warehouse.duckdb.build"
    build(b, 1)
    publish(b, served)
    reader = duckdb.connect(str(served), read_only=True)
    build(b, 2)
    publish(b, served)
    assert reader.execute("select max(v) from marts.t").fetchone()[0] == 1
    reader.close()
    assert served_value(served) == 2


def test_second_run_refuses_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    served = tmp_path / "warehouse.duckdb"
    with run_lock(served):
        with pytest.raises(RunLockedError, match="another run is building"):
            with run_lock(served):
                pass
    with run_lock(served):  # released after the holder leaves
        pass


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    served = tmp_path / "warehouse.duckdb"
    code = (
        "import sys, time; from pathlib import Path; from pipelines.run import run_lock\n"
        f"with run_lock(Path({str(served)!r})):\n    print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(RunLockedError):
        with run_lock(served):
            pass
    proc.kill()
    proc.wait()
    with run_lock(served):
        pass


def test_a_version_published_while_the_clock_goes_back_still_sorts_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version names come from the clock; a clock that stands still or steps back (NTP, a
    second boundary) must not make a newer version sort before an older one."""
    import pipelines.lib.publish as pub

    served, b = tmp_path / "warehouse.duckdb", tmp_path / "warehouse.duckdb.build"
    clock = iter([2_000_000_000_999_999_000, 2_000_000_000_000_001_000, 2_000_000_000_000_001_000])
    monkeypatch.setattr(pub.time, "time_ns", lambda: next(clock))
    for value in (1, 2, 3):
        build(b, value)
        publish(b, served, keep=3)
    names = [v.name for v in list_versions(served)]
    assert len(names) == 3 and len(set(names)) == 3
    assert os.path.samefile(list_versions(served)[-1], served)
    rollback(served)
    assert served_value(served) == 2
    rollback(served)
    assert served_value(served) == 1
