"""The in-process Spark target runs in ANSI mode, as Spark 4 and its Thrift server do.

dbt-spark writes `spark.sql.ansi.enabled = false` over every profile's session settings;
`pipelines.lib.spark_dbt` (the dbt entry point of `crmwh run --engine spark`) keeps the
value the profile gives. The build itself under ANSI mode is exercised by
tests/test_spark_marts.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.lib.spark import dbt_spark_command
from pipelines.lib.spark_dbt import ANSI, keep_profile_ansi_mode
from tests.conftest import ROOT

pytest.importorskip(
    "dbt.adapters.spark", reason="the spark extra is not installed (make setup-spark)"
)
from dbt.adapters.spark.connections import SparkCredentials  # noqa: E402


def credentials(params: dict[str, str]) -> SparkCredentials:
    return SparkCredentials(
        method="session", host="localhost", schema="default", server_side_parameters=params
    )


def test_profile_ansi_mode_survives_dbt_spark():
    # dbt-spark alone overwrites it (the reason for the entry point)
    forced = SparkCredentials.__post_init__
    if not getattr(forced, "keeps_profile_ansi_mode", False):
        assert credentials({ANSI: "true"}).server_side_parameters[ANSI] == "false"
    keep_profile_ansi_mode()
    keep_profile_ansi_mode()  # once is enough; twice changes nothing
    kept = credentials({ANSI: "true", "spark.sql.shuffle.partitions": "4"})
    assert kept.server_side_parameters == {ANSI: "true", "spark.sql.shuffle.partitions": "4"}
    assert credentials({ANSI: "false"}).server_side_parameters[ANSI] == "false"
    # a profile that does not say keeps dbt-spark's choice
    assert credentials({}).server_side_parameters[ANSI] == "false"


def test_spark_target_asks_for_ansi_mode_and_crmwh_keeps_it(tmp_path: Path):
    profile = yaml.safe_load((ROOT / "dbt_project/profiles.yml").read_text())
    spark = profile["crm_warehouse"]["outputs"]["spark"]["server_side_parameters"]
    assert spark[ANSI] == "{{ env_var('CRMWH_SPARK_ANSI', 'true') }}"
    from pipelines.lib.settings import load_settings

    settings = load_settings(environ={"CRMWH_PATHS__STATE": str(tmp_path)})
    cmd = dbt_spark_command(settings)
    assert cmd[1:4] == ["-m", "pipelines.lib.spark_dbt", "build"]
