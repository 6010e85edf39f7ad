"""The run summary's account of a failed model: model, error, and where the value came from."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.diagnose import (
    explain_failed_node,
    quoted_value,
    unparsed_value_lines,
    upstream_raw_tables,
)

MANIFEST = {
    "parent_map": {
        "model.crm_warehouse.int_call_legs": ["model.crm_warehouse.stg_asterisk__cdr"],
        "model.crm_warehouse.stg_asterisk__cdr": ["source.crm_warehouse.raw.asterisk__cdr"],
        "source.crm_warehouse.raw.asterisk__cdr": [],
    }
}


def _duckdb_error(sql: str) -> str:
    con = duckdb.connect()
    try:
        with pytest.raises(duckdb.Error) as caught:
            con.execute(sql)
    finally:
        con.close()
    return str(caught.value)


def test_the_quoted_value_of_real_engine_errors() -> None:
    message = _duckdb_error("select cast('mainserverdss-1706435813' as bigint)")
    assert quoted_value(message) == "mainserverdss-1706435813"
    spark = (
        "[CAST_INVALID_INPUT] The value '1069-1' of the type \"STRING\" cannot be cast to "
        '"BIGINT" because it is malformed.'
    )
    assert quoted_value(spark) == "1069-1"
    assert quoted_value("Binder Error: column x not found") is None


def test_upstream_raw_tables_follow_the_lineage() -> None:
    assert upstream_raw_tables(MANIFEST, "model.crm_warehouse.int_call_legs") == ["asterisk__cdr"]


def test_a_failed_model_names_the_column_file_and_line_of_the_value(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw")
    con.execute(
        "create table raw.asterisk__cdr as select * from (values "
        "('1706421930.4', 'Master.csv', 1), ('mainserverdss-1706435813.5', 'pbx2/Master.csv', 7),"
        "('mainserverdss-1706435813.6', 'pbx2/Master.csv', 9)"
        ") t(uniqueid, _source_file, _line)"
    )
    con.close()
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(MANIFEST))
    message = _duckdb_error("select cast('mainserverdss-1706435813' as bigint)")
    lines = explain_failed_node("model.crm_warehouse.int_call_legs", message, manifest, warehouse)
    assert lines[0].startswith("int_call_legs: Conversion Error")
    assert "raw.asterisk__cdr.uniqueid: 2 row(s), first in pbx2/Master.csv line 7" in lines[-1]
    assert len(lines) <= 4


def test_unparsed_values_are_listed_per_table_and_column(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema intermediate")
    con.execute(
        "create table intermediate.int_unparsed_values as select * from (values "
        "('L1', 'asterisk__cdr', 'uniqueid', 2, 'x', 'Master.csv', 5),"
        "('L2', 'asterisk__cdr', 'uniqueid', 1, 'y', 'Master2.csv', 3),"
        "(null, 'sales_plan', 'quarter', 1, '2026-Q5', 'sales_plan.csv', null)"
        ") t(load_id, table_name, column_name, unparsed_count, example_value, "
        "example_source_file, example_line)"
    )
    con.close()
    assert unparsed_value_lines(warehouse) == [
        "asterisk__cdr.uniqueid: 3 value(s), e.g. 'x' (Master.csv, line 5)",
        "sales_plan.quarter: 1 value(s), e.g. '2026-Q5' (sales_plan.csv)",
    ]
