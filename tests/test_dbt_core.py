"""The conformed dimensions (models/*/core): dbt build with their unit tests, on real DuckDB.

The build (the session's `empty_dbt_build`, tests/conftest.py: the whole project) runs
against a warehouse whose raw views are empty, so every model, contract and data test must
hold on no data, and the unit tests (hand-computed fixtures: working minutes around a
holiday, identity resolution rules, conflicts) run regardless. It builds the test fixtures
too (var test_fixtures: the worked working-time examples checked against the real holiday
calendar), which a production warehouse leaves out. It uses its own target and log paths,
never the shared `dbt_project/target`.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.settings import load_settings
from tests.conftest import DbtBuild

# The core models and everything they are built from. Not their children (facts and
# marts of other domains build on them and are tested by their own suites), and only the
# tests whose parents are all selected (--indirect-selection cautious).
CORE_SELECTION = [
    "path:seeds/core",
    "+path:models/intermediate/core",
    "+path:models/marts/core",
]


@pytest.fixture(scope="module")
def core_build(
    empty_dbt_build: DbtBuild,
) -> tuple[Path, dict, subprocess.CompletedProcess]:
    """The session's build of the whole project on empty raw views, narrowed to the core
    selection: `dbt ls` names the selected nodes, and their results are picked from the
    build's (every one of them must have run)."""
    listed = empty_dbt_build.dbt(
        ["--quiet", "ls", "--select", *CORE_SELECTION, "--indirect-selection", "cautious",
         "--output", "json", "--output-keys", "unique_id", "resource_type"]
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-2000:]
    selected = {
        node["unique_id"]
        for node in map(json.loads, listed.stdout.splitlines())
        if node["resource_type"] in ("model", "seed", "test", "unit_test", "snapshot")
    }
    assert any(uid.startswith("unit_test.") for uid in selected), "no core unit test selected"
    ran = {r["unique_id"]: r for r in empty_dbt_build.results()}
    if empty_dbt_build.build.returncode == 0:
        assert selected <= set(ran), sorted(selected - set(ran))
    results = {"results": [ran[uid] for uid in sorted(selected & set(ran))]}
    return empty_dbt_build.warehouse, results, empty_dbt_build.build


def test_core_build_succeeds_on_empty_raw_views(core_build: tuple) -> None:
    _, results, done = core_build
    assert done.returncode == 0, f"dbt build failed:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
    failed = [
        r["unique_id"]
        for r in results["results"]
        if r["status"] not in ("success", "pass") and not r["unique_id"].startswith("exposure.")
    ]
    assert not failed, failed


def test_core_unit_tests_ran_and_passed(core_build: tuple) -> None:
    _, results, _ = core_build
    unit = {
        r["unique_id"].split(".")[-1]: r["status"]
        for r in results["results"]
        if r["unique_id"].startswith("unit_test.")
    }
    pinned = {
        "int_working_calendar__holiday_and_weekend_count_zero",
        "int_working_calendar__transferred_saturday_and_custom_hours",
        "int_working_calendar__six_day_week",
        "int_working_time_examples__missed_call_friday_1750_before_holiday",
        "int_customer_identifiers__normalises_phones_emails_and_names",
        "int_customer_identity_rounds__inn_phone_email_name_and_a_conflict",
        "int_customer_identity_links__grouping_without_inn",
        "int_customer_identity_conflicts__ambiguous_record_and_shared_phone",
        "int_customer_keys__lookup_for_facts",
        "int_manager_keys__extensions_and_names",
        "dim_customer__figures_by_hand",
        "dim_manager__teams_activity_and_extensions",
        "dim_channel__mapping_plus_other_and_unknown",
        "dim_product__salesforce_products_and_cost_only_codes",
        "dim_date__iso_week_across_new_year",
    }
    assert pinned <= set(unit), sorted(pinned - set(unit))
    assert all(unit[name] == "pass" for name in pinned), {n: unit[n] for n in pinned}


def test_calendar_and_worked_examples_on_the_real_holiday_seed(core_build: tuple) -> None:
    warehouse, _, done = core_build
    assert done.returncode == 0
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        days, first, last = con.execute(
            "select count(*), min(date_day), max(date_day) from marts.dim_date"
        ).fetchone()
        assert (first, last) == (dt.date(2015, 1, 1), dt.date(2030, 12, 31))
        assert days == (last - first).days + 1
        flags = dict(
            (d, (h, w))
            for d, h, w in con.execute(
                "select date_day, is_holiday, is_working_day from marts.dim_date "
                "where date_day in ('2023-06-09', '2023-06-12', '2024-11-02', '2024-11-03', "
                "'2024-12-31', '2025-01-09')"
            ).fetchall()
        )
        assert flags[dt.date(2023, 6, 9)] == (False, True)  # Friday before Russia Day
        assert flags[dt.date(2023, 6, 12)] == (True, False)  # Russia Day (Monday)
        assert flags[dt.date(2024, 11, 2)] == (False, True)  # transferred working Saturday
        assert flags[dt.date(2024, 11, 3)] == (False, False)  # ordinary Sunday
        assert flags[dt.date(2024, 12, 31)] == (True, False)  # day off by decree
        assert flags[dt.date(2025, 1, 9)] == (False, True)  # first working day of 2025
        examples = con.execute(
            "select example, actual_minutes, expected_minutes, actual_within, expected_within "
            "from intermediate.int_working_time_examples"
        ).fetchall()
        assert len(examples) >= 8
        for name, actual, expected, within, expected_within in examples:
            assert abs(actual - expected) < 1e-6 and within == expected_within, name
        # no data in, no customers out, but the shape is there
        assert con.execute("select count(*) from marts.dim_customer").fetchone()[0] == 0
        assert con.execute("select count(*) from marts.dim_channel").fetchone()[0] >= 2
    finally:
        con.close()


def test_holiday_seed_is_what_the_script_writes(tmp_path: Path) -> None:
    """The committed seed is reproducible from the `holidays` package (re-run the script)."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_holiday_seed.py"
    out = tmp_path / "holidays.csv"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    seed = load_settings().dbt_project_dir / "seeds" / "core" / "holidays.csv"
    assert out.read_text(encoding="utf-8") == seed.read_text(encoding="utf-8")
    rows = out.read_text(encoding="utf-8").splitlines()
    assert "RU,2024-11-02,working_weekend" in "\n".join(rows)


def test_dimensions_on_demo_data(built_warehouse: Path) -> None:
    """On the demo exports: customers resolved, and the facts find their dimensions."""
    con = duckdb.connect(str(built_warehouse), read_only=True)
    try:

        def one(sql: str) -> tuple:
            return con.execute(sql).fetchone()

        customers, with_inn, inns = one(
            "select count(*), count(inn), count(distinct inn) from marts.dim_customer"
        )
        assert customers > 0 and with_inn == inns  # one customer per INN
        assert (
            one("select count(*) from marts.dim_customer where source_ids not like '[%]'")[0] == 0
        )
        deals, keyed = one(
            "select count(*), count(keys.customer_id) from marts.fct_deal as deals "
            "left join intermediate.int_customer_keys as keys "
            "on keys.source_system = 'deal' and keys.source_key = deals.deal_id"
        )
        assert keyed >= 0.95 * deals
        assert (
            one(
                "select count(*) from marts.fct_deal as deals left join marts.dim_channel as ch "
                "using (channel) where ch.channel is null"
            )[0]
            == 0
        )
        assert (
            one(
                "select count(*) from marts.fct_deal as deals left join marts.dim_manager as m "
                "using (manager_id) where deals.manager_id is not null and m.manager_id is null"
            )[0]
            == 0
        )
    finally:
        con.close()
