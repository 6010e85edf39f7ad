"""The marts' contract check on Spark, in process and over the Thrift server.

`spark__get_assert_columns_equivalent` (dbt_project/macros/portability.sql) compares the
columns a model builds, as the connection's cursor reports them, with its declared
contract. In process (dbt-spark `session`) the cursor reports Spark type names
(`decimal(18,2)`); over the Thrift server, PyHive reports Hive type ids without precision
(`DECIMAL_TYPE`, `STRING_TYPE`). These tests render the project's own macro file with
dbt's Jinja environment and call the check with the contracts of the real marts and
columns made the way dbt-spark makes them (`SparkColumn.create(name, type code)`): every
contract passes in both forms, and a real difference still fails with dbt's
`ContractError` naming the column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dbt.context.exceptions_jinja import raise_contract_error
from dbt.exceptions import ContractError
from dbt_common.clients.jinja import get_template

pytest.importorskip(
    "dbt.adapters.spark", reason="the spark extra is not installed (make setup-spark)"
)
from dbt.adapters.spark.column import SparkColumn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MACROS = ROOT / "dbt_project/macros/portability.sql"
MARTS = ROOT / "dbt_project/models/marts"

# How Spark's Thrift server reports a column of each declared type (its TTypeId, as PyHive
# names it): a string has no length there, a decimal no precision, and `timestamp` and
# `timestamp_ntz` are both TIMESTAMP_TYPE.
HIVE_TYPE_ID = {
    "varchar": "STRING_TYPE",
    "integer": "INT_TYPE",
    "bigint": "BIGINT_TYPE",
    "double": "DOUBLE_TYPE",
    "boolean": "BOOLEAN_TYPE",
    "date": "DATE_TYPE",
    "timestamp": "TIMESTAMP_TYPE",
    "decimal": "DECIMAL_TYPE",
}
# How the in-process session reports it (Spark's simpleString)
SPARK_NAME = {"varchar": "string", "integer": "int"}


def contracted_marts() -> dict[str, dict[str, str]]:
    """{mart: {column: declared data_type}} of every mart whose contract is enforced."""
    marts: dict[str, dict[str, str]] = {}
    for path in sorted(MARTS.glob("*/*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            contract = (model.get("config") or {}).get("contract") or {}
            if contract.get("enforced"):
                marts[model["name"]] = {c["name"]: c["data_type"] for c in model["columns"]}
    return marts


def hive_type_id(declared: str) -> str:
    return HIVE_TYPE_ID[declared.split("(")[0]]


def spark_name(declared: str) -> str:
    return SPARK_NAME.get(declared, declared)


class Config:
    def get(self, key: str, default: Any = None) -> Any:
        return default


def check(declared: dict[str, str], built: list[tuple[str, str]]) -> None:
    """Run the project's Spark contract check: `declared` {name: data_type} against the
    columns a cursor reported as [(name, type code)]; raises dbt's ContractError."""
    columns = [SparkColumn.create(name, code) for name, code in built]
    context = {
        "model": {"columns": {n: {"name": n, "data_type": t} for n, t in declared.items()}},
        "config": Config(),
        "get_column_schema_from_query": lambda sql, header=None: columns,
        "exceptions": {"raise_contract_error": raise_contract_error},
    }
    macros(context)["spark__get_assert_columns_equivalent"]("select 1")


def macros(context: dict[str, Any]) -> dict[str, Any]:
    """The macros of portability.sql by name, each able to call the others (as dbt's
    context makes every macro of a project callable by its name)."""
    module = get_template(MACROS.read_text(), context).module
    found = {
        name.removeprefix("dbt_macro__"): getattr(module, name)
        for name in dir(module)
        if name.startswith("dbt_macro__")
    }
    context.update(found)  # the template's globals are this dict
    return found


def portable(data_type: str) -> str:
    return str(macros({})["portable_type"](data_type)).strip()


def test_every_contract_holds_over_thrift_and_in_process():
    marts = contracted_marts()
    assert len(marts) >= 9, sorted(marts)
    declared_types = {t for columns in marts.values() for t in columns.values()}
    # every type a contract declares is one whose Hive id the test knows
    assert {t.split("(")[0] for t in declared_types} <= set(HIVE_TYPE_ID), declared_types
    for columns in marts.values():
        check(columns, [(c, hive_type_id(t)) for c, t in reversed(columns.items())])
        check(columns, [(c, spark_name(t)) for c, t in columns.items()])


@pytest.mark.parametrize(
    ("code", "family"),
    [("STRING_TYPE", "string"), ("VARCHAR_TYPE", "string"), ("CHAR_TYPE", "string"),
     ("INT_TYPE", "int"), ("BIGINT_TYPE", "bigint"), ("SMALLINT_TYPE", "smallint"),
     ("TINYINT_TYPE", "tinyint"), ("DOUBLE_TYPE", "double"), ("FLOAT_TYPE", "float"),
     ("BOOLEAN_TYPE", "boolean"), ("DATE_TYPE", "date"), ("TIMESTAMP_TYPE", "timestamp"),
     ("TIMESTAMPLOCALTZ_TYPE", "timestamp"), ("DECIMAL_TYPE", "decimal"),
     ("BINARY_TYPE", "binary"), ("INTERVAL_DAY_TIME_TYPE", "interval"),
     ("varchar", "string"), ("varchar(20)", "string"), ("integer", "int"),
     ("numeric(18, 2)", "decimal(18,2)"), ("decimal(18,2)", "decimal(18,2)")],
)  # fmt: skip
def test_type_names_map_to_one_family(code: str, family: str):
    assert portable(code) == family


def mismatched(declared: dict[str, str], built: list[tuple[str, str]]) -> list[tuple]:
    with pytest.raises(ContractError) as caught:
        check(declared, built)
    return [tuple(row) for row in caught.value.get_mismatches().rows]


def test_a_real_difference_still_fails_over_thrift():
    marts = contracted_marts()
    columns = marts["fct_invoice"]
    money = next(c for c, t in columns.items() if t.startswith("decimal"))
    text = next(c for c, t in columns.items() if t == "varchar")
    day = next(c for c, t in columns.items() if t == "date")
    # a money column built as a double, a date built as a timestamp
    built = [(c, hive_type_id(t)) for c, t in columns.items()]
    built = [(c, "DOUBLE_TYPE" if c == money else "TIMESTAMP_TYPE" if c == day else code)
             for c, code in built]  # fmt: skip
    rows = mismatched(columns, built)
    assert sorted(r[0] for r in rows) == sorted([money, day]), rows
    assert {r[3] for r in rows} == {"data type mismatch"}
    # a text column the model no longer builds, and one it builds but does not declare
    built = [(c, hive_type_id(t)) for c, t in columns.items() if c != text]
    rows = mismatched(columns, [*built, ("surprise", "STRING_TYPE")])
    assert {(r[0], r[3]) for r in rows} == {
        (text, "missing in definition"),
        ("surprise", "missing in contract"),
    }, rows
    # integer against bigint is a difference, not one family
    rows = mismatched({"n": "integer"}, [("n", "BIGINT_TYPE")])
    assert [(r[0], r[1], r[2]) for r in rows] == [("n", "bigint", "int")], rows


def test_precision_is_still_checked_where_the_cursor_reports_it():
    # in process Spark names the precision: a different scale is a difference there
    rows = mismatched({"amount": "decimal(18,2)"}, [("amount", "decimal(38,10)")])
    assert [(r[0], r[1], r[2]) for r in rows] == [("amount", "decimal(38,10)", "decimal(18,2)")]
    check({"amount": "decimal(18,2)"}, [("amount", "DECIMAL_TYPE")])
