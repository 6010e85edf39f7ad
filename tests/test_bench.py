"""`crmwh bench`: the harness runs end to end and reports every figure (docs/benchmark.md).

Timings are reported, never asserted: only that the keys exist and hold positive numbers.
The full harness runs at the small scale without Superset (two real `crmwh run`s).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from crmwh_tools import bench
from tests.conftest import crmwh


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bench.percentile(values, 50) == 50.0
    assert bench.percentile(values, 95) == 95.0
    assert bench.percentile([7.0], 95) == 7.0
    assert bench.percentile([], 50) is None


def test_stage_of_groups_dagster_steps() -> None:
    assert bench.stage_of("raw__bitrix__deal_snapshot") == "ingest"
    assert bench.stage_of("quality__raw__asterisk__cdr") == "checks"
    assert bench.stage_of("quality__staging__stg_bitrix__lead") == "checks"
    assert bench.stage_of("dbt_models") == "dbt"
    assert bench.stage_of("warehouse__published") == "publish"


def test_tree_sampler_sees_this_process() -> None:
    import os

    assert os.getpid() in bench.tree_pids(os.getpid())
    assert bench.rss_bytes(os.getpid()) > 0


def test_write_next_day_adds_one_export_day(tmp_path: Path) -> None:
    from crmwh_tools.demo_data import generate

    landing = tmp_path / "landing"
    generate(landing, seed=3, scale="small")
    snaps = sorted((landing / "crm_bitrix").glob("deals_????-??-??.csv"))
    last = dt.date.fromisoformat(snaps[-1].stem.removeprefix("deals_"))
    day = last + dt.timedelta(days=1)

    added = bench.write_next_day(landing)

    assert set(added) == {
        f"crm_bitrix/deals_{day}.csv",
        f"telephony_asterisk/Master_{day}.csv",
        f"accounting_1c/invoices_{day}.csv",
    }
    assert all(n > 0 for n in added.values())
    cdr = (landing / f"telephony_asterisk/Master_{day}.csv").read_text(encoding="utf-8")
    assert f'"{day} ' in cdr  # timestamps moved to the new day
    inv = (landing / f"accounting_1c/invoices_{day}.csv").read_text(encoding="cp1251")
    assert inv.splitlines()[1].split(";")[1] == f"{day:%d.%m.%Y}"


def test_scan_profile_counts_what_a_query_reads(tmp_path: Path) -> None:
    import duckdb

    wh = tmp_path / "w.duckdb"
    with duckdb.connect(str(wh)) as con:  # 3 row groups of 122,880 rows, in day order
        con.execute("create table t as select i // 1000 as day, i as v from range(368640) r(i)")
    one_day = bench.scan_profile(wh, ["select sum(v) from t where day = 5"])
    every = bench.scan_profile(wh, ["select sum(v) from t", "select count(*) from t"])

    assert one_day["queries"] == 1 and "error" not in one_day
    assert (one_day["row_groups_scanned"], one_day["row_groups_to_scan"]) == (1, 3)
    assert 0 < one_day["rows_scanned"] <= 122_880
    assert every["rows_scanned"] == 2 * 368_640
    assert "error" in bench.scan_profile(wh, ["select * from missing"])
    assert bench.scan_profile(wh, [])["error"] == "no SQL from Superset"

    table = "\n".join(bench._chart_table({
        "clients": 8, "per_chart_p95": {"A": 10.0, "B": 900.0},
        "cold": {"A": 5.0}, "scanned": {"B": one_day},
    }))  # fmt: skip
    assert table.index("| B | 900 ms") < table.index("| A | 10 ms | 5 ms | — |")
    assert "| 1 / 3 |" in table


@pytest.mark.slow
def test_bench_small_writes_every_figure(tmp_path: Path) -> None:
    import os

    out = tmp_path / "bench"
    env = dict(os.environ)
    run = crmwh(["bench", "--scale", "small", "--out", str(out), "--skip-dashboard"], env,
                timeout=5400)  # fmt: skip
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-4000:]}"

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for key in ("full_over_floor", "increment_over_full", "gx_over_sql"):
        assert _positive(results["ratios"][key]), (key, results["ratios"])
    for stage in ("floor", "full_refresh", "increment", "ingest", "checks", "dbt", "publish"):
        assert _positive(results["seconds"][stage]), (stage, results["seconds"])
    assert _positive(results["peak_rss_bytes"])
    # --skip-dashboard: the keys are there, without a measurement
    assert set(results["chart_ms"]) >= {"p50", "p95"}
    assert set(results["targets"]) == set(bench.TARGETS)
    assert results["full_refresh"]["exit_code"] in (0, 2)
    assert results["increment"]["exit_code"] in (0, 2)
    assert sum(results["increment"]["files_added"].values()) > 0

    md = (out / "results.md").read_text(encoding="utf-8")
    assert "| **full / floor** |" in md and "| **increment / full** |" in md
    assert "| **full / floor** |" in run.stdout  # the table is printed too
    # the generated landing is kept and reused; a run's own files are under work/
    assert (out / "landing" / "small-seed42" / bench.MARKER).exists()
    assert not list((out / "landing" / "small-seed42").rglob("*2026-11-21*"))
