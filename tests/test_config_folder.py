"""The user configuration folder: `crmwh init`, mappings and tables over the shipped ones.

Fast: no demo build. One test seeds a scratch DuckDB file through dbt (about 20 s).
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines import cli
from pipelines.lib.config_folder import (
    SEED_DIR_ENV,
    ConfigFolderError,
    check_config,
    editable_tables,
    init_config_folder,
    prepare_seed_dir,
    table_path,
)
from pipelines.lib.dbt import dbt_env, dbt_executable, dbt_vars_arg
from pipelines.lib.mappings import MappingError, load_entities
from pipelines.lib.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "sources"
SEEDS = ROOT / "dbt_project" / "seeds"

# The tables a company edits, by what they configure (docs/configuration.md).
COMPANY_TABLES = {
    "pipeline_stages", "pbx_contexts", "channel_mapping", "channel_groups", "sales_plan",
    "currency_rates", "holidays", "teams", "loss_reasons", "customer_segments",
}  # fmt: skip


def settings_with(config: Path | None, data: Path) -> Settings:
    env = {"CRMWH_PATHS__DATA": str(data), "CRMWH_PATHS__CONFIG": str(config or "")}
    return load_settings(environ=env)


def write_yaml(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def shipped_doc(system: str) -> dict:
    return yaml.safe_load((SOURCES / system / "source.yml").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- init


def test_editable_tables_are_the_company_tables_and_no_test_fixture() -> None:
    assert set(editable_tables(SEEDS)) == COMPANY_TABLES


def test_init_scaffolds_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "acme"
    assert cli.main(["init", str(target)]) == 0
    assert (target / "README.md").exists()
    assert "config:" in (target / "settings.yml.example").read_text(encoding="utf-8")
    assert "<system>.yml" in (target / "sources" / "README.md").read_text(encoding="utf-8")
    assert not list((target / "sources").glob("*.yml"))  # mappings only on request
    tables = {p.stem for p in (target / "tables").glob("*.csv")}
    assert tables == COMPANY_TABLES
    for name in tables:  # copies of the shipped rows, ready to edit
        shipped = editable_tables(SEEDS)[name]
        assert (target / "tables" / f"{name}.csv").read_bytes() == shipped.read_bytes()


def test_init_with_mappings_copies_them_and_keeps_edited_files(tmp_path: Path) -> None:
    target = tmp_path / "acme"
    edited = target / "tables" / "pipeline_stages.csv"
    edited.parent.mkdir(parents=True)
    edited.write_text("pipeline,stage,stage_code,stage_order,probability,is_closed,is_won\n")
    written, kept = init_config_folder(target, SOURCES, SEEDS, with_mappings=True)
    assert edited in kept and edited not in written
    assert edited.read_text().count("\n") == 1  # left as the user wrote it
    copied = {p.stem for p in (target / "sources").glob("*.yml")}
    assert copied == {p.parent.name for p in SOURCES.glob("*/source.yml")}
    # the copies load as the shipped mappings do: same raw tables, no duplicate error
    shipped = {e.table for e in load_entities(SOURCES)}
    assert {e.table for e in load_entities(SOURCES, target)} == shipped


# --------------------------------------------------------------------------- mappings


def test_a_user_mapping_overrides_the_shipped_entity_instead_of_failing(tmp_path: Path) -> None:
    doc = shipped_doc("salesforce")
    user_entity = dict(doc["entities"]["user"])
    user_entity["files"] = ["Users_*.csv"]
    write_yaml(
        tmp_path / "sources" / "salesforce.yml",
        {k: v for k, v in doc.items() if k != "entities"} | {"entities": {"user": user_entity}},
    )
    entities = {e.table: e for e in load_entities(SOURCES, tmp_path)}
    assert entities["salesforce__user"].files == ("Users_*.csv",)
    assert entities["salesforce__user"].definition_file == tmp_path / "sources" / "salesforce.yml"
    # the entities the file does not name stay as shipped
    shipped = {e.table: e for e in load_entities(SOURCES)}
    assert set(entities) == set(shipped)
    assert entities["salesforce__account"].definition_file == SOURCES / "salesforce" / "source.yml"


def test_replace_all_drops_the_shipped_entities_not_declared(tmp_path: Path) -> None:
    doc = shipped_doc("asterisk")
    doc["replace"] = "all"
    doc["entities"] = {"cdr": doc["entities"]["cdr"]}
    write_yaml(tmp_path / "sources" / "asterisk.yml", doc)
    tables = {e.table for e in load_entities(SOURCES, tmp_path)}
    assert "asterisk__cdr" in tables
    assert not {t for t in tables if t.startswith("asterisk__") and t != "asterisk__cdr"}
    assert "salesforce__user" in tables


def test_a_user_mapping_of_a_new_system_adds_it(tmp_path: Path) -> None:
    write_yaml(
        tmp_path / "sources" / "amocrm.yml",
        {"system": "amocrm", "folder": "crm_amo",
         "entities": {"lead": {"files": ["leads_*.csv"], "columns": {"id": {"required": True}}}}},
    )  # fmt: skip
    tables = {e.table for e in load_entities(SOURCES, tmp_path)}
    assert "amocrm__lead" in tables and "salesforce__user" in tables


def test_two_user_files_declaring_one_entity_are_an_error_naming_both(tmp_path: Path) -> None:
    doc = shipped_doc("bitrix")
    first = write_yaml(tmp_path / "sources" / "bitrix.yml", doc)
    second = write_yaml(tmp_path / "sources" / "bitrix-copy.yml", doc)
    with pytest.raises(MappingError) as err:
        load_entities(SOURCES, tmp_path)
    assert str(first) in str(err.value) and str(second) in str(err.value)


def test_an_unknown_replace_value_is_an_error(tmp_path: Path) -> None:
    doc = shipped_doc("bitrix") | {"replace": "everything"}
    write_yaml(tmp_path / "sources" / "bitrix.yml", doc)
    with pytest.raises(MappingError, match="replace"):
        load_entities(SOURCES, tmp_path)


# --------------------------------------------------------------------------- tables


def write_stages(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["pipeline", "stage", "stage_code", "stage_order", "probability",
                    "is_closed", "is_won"])  # fmt: skip
        w.writerow(["salesforce", "Наш этап", "", "1", "0.3", "false", "false"])
        w.writerow(["salesforce", "Закрыта", "", "2", "1", "true", "true"])


def test_a_user_table_replaces_the_seed_in_the_prepared_seed_folder(tmp_path: Path) -> None:
    config = tmp_path / "config"
    write_stages(config / "tables" / "pipeline_stages.csv")
    s = settings_with(config, tmp_path / "data")
    seeds = prepare_seed_dir(s)
    assert seeds == tmp_path / "data" / "seeds"
    # same tree as shipped (property files included), the user's CSV in place of the seed's
    shipped = sorted(p.relative_to(SEEDS) for p in SEEDS.rglob("*") if p.is_file())
    assert sorted(p.relative_to(seeds) for p in seeds.rglob("*") if p.is_file()) == shipped
    assert "Наш этап" in (seeds / "pipeline_stages.csv").read_text(encoding="utf-8")
    assert (seeds / "core" / "holidays.csv").read_bytes() == (
        SEEDS / "core" / "holidays.csv"
    ).read_bytes()
    assert table_path(s, "pipeline_stages") == config / "tables" / "pipeline_stages.csv"
    assert table_path(s, "holidays") == SEEDS / "core" / "holidays.csv"
    # the user's table removed: the shipped one is back on the next preparation
    (config / "tables" / "pipeline_stages.csv").unlink()
    prepare_seed_dir(s)
    assert (seeds / "pipeline_stages.csv").read_bytes() == (
        SEEDS / "pipeline_stages.csv"
    ).read_bytes()


def test_dbt_env_points_dbt_at_the_prepared_seeds_only_with_a_folder(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "tables").mkdir(parents=True)
    s = settings_with(config, tmp_path / "data")
    env = dbt_env(s, tmp_path / "wh.duckdb")
    # relative to the project (dbt writes compiled seed tests under target/ at that path),
    # a link to the prepared folder
    seeds = Path(env[SEED_DIR_ENV])
    assert not seeds.is_absolute()
    assert (s.dbt_project_dir / seeds).resolve() == (tmp_path / "data" / "seeds").resolve()
    env = dbt_env(settings_with(None, tmp_path / "data"), tmp_path / "wh.duckdb")
    assert SEED_DIR_ENV not in env


def test_dbt_seeds_the_users_table_typed_as_the_shipped_one(tmp_path: Path) -> None:
    config = tmp_path / "config"
    write_stages(config / "tables" / "pipeline_stages.csv")
    s = settings_with(config, tmp_path / "data")
    warehouse = tmp_path / "wh.duckdb"
    project = s.dbt_project_dir
    cmd = [
        dbt_executable(), "seed", "--select", "pipeline_stages",
        "--project-dir", str(project), "--profiles-dir", str(project),
        "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
        "--vars", dbt_vars_arg(s),
    ]  # fmt: skip
    done = subprocess.run(cmd, env=dbt_env(s, warehouse), capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select stage, stage_order, is_won from seeds.pipeline_stages order by stage_order"
        ).fetchall()
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'seeds' and table_name = 'pipeline_stages'"
            ).fetchall()
        )
    finally:
        con.close()
    assert rows == [("Наш этап", 1, False), ("Закрыта", 2, True)]
    assert types["stage_order"] == "INTEGER" and types["is_won"] == "BOOLEAN"


def test_a_table_file_with_an_unknown_name_is_an_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "config"
    bad = config / "tables" / "pipline_stages.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text("pipeline,stage\n", encoding="utf-8")
    s = settings_with(config, tmp_path / "data")
    with pytest.raises(ConfigFolderError) as err:
        prepare_seed_dir(s)
    assert str(bad) in str(err.value) and "pipeline_stages" in str(err.value)
    with pytest.raises(ConfigFolderError):
        check_config(s)


def test_a_missing_configuration_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFolderError, match="crmwh init"):
        check_config(settings_with(tmp_path / "nowhere", tmp_path / "data"))


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> object:
    """The CLI writes CRMWH_PATHS__* for its child processes: restore them afterwards."""
    for key in ("CONFIG", "DATA", "LANDING", "WAREHOUSE"):
        monkeypatch.setenv(f"CRMWH_PATHS__{key}", "")
        monkeypatch.delenv(f"CRMWH_PATHS__{key}")
    yield


def test_run_refuses_a_bad_configuration_before_starting(
    tmp_path: Path, clean_settings: object, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    (config / "tables").mkdir(parents=True)
    (config / "tables" / "stages.csv").write_text("x\n", encoding="utf-8")
    code = cli.main(["run", "--config", str(config), "--data", str(tmp_path / "data"),
                     "--warehouse", str(tmp_path / "wh.duckdb")])  # fmt: skip
    assert code == 2
    assert "stages.csv" in capsys.readouterr().err
    assert not (tmp_path / "wh.duckdb").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["backfill", "--start", "2026-01-01", "--end", "2026-01-02"],
        ["serve"],
        ["bench"],
    ],
)
def test_commands_that_read_configuration_take_config(argv: list[str]) -> None:
    args = cli.build_parser().parse_args([*argv, "--config", "/srv/acme"])
    assert args.config == "/srv/acme"


def test_config_flag_reaches_child_processes_as_a_path(
    tmp_path: Path, clean_settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.chdir(tmp_path)
    args = cli.build_parser().parse_args(["run", "--config", "acme", "--data", str(tmp_path)])
    settings = cli.settings_from_args(args)
    assert settings.config_dir == (tmp_path / "acme").resolve()
    assert "CRMWH_PATHS__CONFIG" not in os.environ  # passed down, not through this process
    child = settings.environment()  # what a child process (the Dagster UI) is given
    assert child["CRMWH_PATHS__CONFIG"] == str((tmp_path / "acme").resolve())
    assert load_settings(environ=child).config_dir == (tmp_path / "acme").resolve()
    assert load_settings(environ=child).data_dir == tmp_path.resolve()


def test_settings_without_a_folder_have_none() -> None:
    assert load_settings(environ={}).config_dir is None
