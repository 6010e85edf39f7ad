"""The dbt project builds, tests and documents itself on a warehouse with empty raw views.

Empty raw views are the contract between ingestion and dbt (pipelines/lib/warehouse.py):
every model must compile and run against them, every unit test (hand-computed fixtures)
and schema test must pass, and the marts must expose the public interface of the metric
contract (docs/metrics.md). The build is the session's `empty_dbt_build` (tests/conftest.py),
shared with the conformed dimensions' tests; it writes its target/ and logs/ to a temporary
directory so that it never disturbs dbt_project/target (the manifest Dagster reads).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from pipelines.lib.dbt import public_marts
from pipelines.lib.mappings import load_entities
from pipelines.lib.settings import SETTINGS_FILE, load_settings
from tests.conftest import DbtBuild, query

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "dbt_project"

# columns the metric contract names for some of the public marts (the list of public
# marts itself is dbt's: the models declared `access: public`)
PUBLIC_INTERFACE = {
    "fct_deal": [
        "deal_id", "customer_id", "manager_id", "channel", "pipeline", "created_at",
        "closed_at", "status", "amount", "loss_reason", "last_stage_before_loss",
        "sales_cycle_days",
    ],
    "fct_stage_visit": [
        "deal_id", "stage", "stage_order", "entered_at", "exited_at", "days_in_stage", "is_open",
    ],
    "mart_funnel_velocity": [
        "month", "pipeline", "stage", "stage_order", "deals_entered", "deals_converted",
        "conversion_rate", "avg_days_in_stage", "median_days_in_stage", "p90_days_in_stage",
    ],
    "mart_data_quality": [
        "load_id", "loaded_at", "source", "table_name", "rows_read", "rows_loaded",
        "rows_quarantined", "duplicates_merged", "incomplete_rows", "freshness_at",
    ],
}  # fmt: skip

UNIT_TESTS_EXPECTED = {
    "int_deal_stage_changes__salesforce_repeats_collapse_revisits_kept",
    "int_deal_stage_changes__bitrix_derived_from_three_snapshots",
    "fct_stage_visit__fractional_days_open_and_terminal_visits",
    "mart_funnel_velocity__three_deals",
    "fct_deal__sales_cycle_days",
    "int_loss_reasons__normalised_english_and_russian",
    "int_deals__status_amount_customer_manager_channel_loss",
    "int_pipeline_stages__salesforce_export_replaces_seed",
    "stg_salesforce__opportunity__ids_versions_deleted_and_time_zone",
    "stg_bitrix__deal_snapshot__phones_inn_email_and_redelivery",
    "stg_asterisk__cdr__clid_parsed_to_number",
    "int_duplicate_counts__rules_on_a_hand_made_fixture",
    "mart_data_quality__duplicates_per_rule_of_the_load",
}


def test_build_succeeds_with_every_test(empty_dbt_build: DbtBuild) -> None:
    out = empty_dbt_build.build
    assert out.returncode == 0, f"dbt build failed:\n{out.stdout[-6000:]}\n{out.stderr[-3000:]}"
    results = empty_dbt_build.results()
    failed = [
        r["unique_id"]
        for r in results
        if r["status"] not in ("success", "pass", "warn")
        and not r["unique_id"].startswith("exposure.")  # exposures are documentation only
    ]
    assert not failed, failed
    unit = {
        r["unique_id"].split(".")[-1] for r in results if r["unique_id"].startswith("unit_test.")
    }
    assert UNIT_TESTS_EXPECTED <= unit, UNIT_TESTS_EXPECTED - unit
    assert any(r["unique_id"].startswith("test.") for r in results), "no schema tests ran"


def test_marts_expose_public_interface(empty_dbt_build: DbtBuild) -> None:
    assert empty_dbt_build.build.returncode == 0
    warehouse = empty_dbt_build.warehouse
    rows = query(
        warehouse, "select table_schema, table_name, column_name from information_schema.columns"
    )
    tables = {
        schema: set(names)
        for schema, names in query(
            warehouse,
            "select table_schema, list(table_name) from information_schema.tables group by 1",
        )
    }
    columns: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in rows:
        columns.setdefault((schema, table), set()).add(column)
    for table, expected in PUBLIC_INTERFACE.items():
        got = columns.get(("marts", table))
        assert got is not None, f"marts.{table} missing"
        assert set(expected) <= got, f"marts.{table} lacks {set(expected) - got}"
    assert {"staging", "intermediate", "marts"} <= set(tables)
    assert "stg_salesforce__opportunity" in tables["staging"]
    assert "int_deal_stage_changes" in tables["intermediate"]


def test_every_raw_table_has_a_source_and_a_staging_model(empty_dbt_build: DbtBuild) -> None:
    assert empty_dbt_build.build.returncode == 0
    manifest = empty_dbt_build.manifest()
    # the source table's name is the raw table's name: Dagster's translator keys dbt
    # sources as raw/<name>, the same key as the ingestion asset of that table
    sources = {(s["schema"], s["name"]) for s in manifest["sources"].values()}
    assert all(s["name"] == s["identifier"] for s in manifest["sources"].values())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    for ent in load_entities(ROOT / "sources"):
        assert ("raw", ent.table) in sources, f"raw.{ent.table} is not a dbt source"
        assert f"stg_{ent.system}__{ent.name}" in models, f"no staging model for {ent.table}"
    for meta in ("load_manifest", "quarantine", "file_delivery"):
        assert ("raw", meta) in sources


def test_public_marts_have_enforced_contracts_and_described_columns(
    empty_dbt_build: DbtBuild,
) -> None:
    manifest = empty_dbt_build.manifest()
    public = public_marts(empty_dbt_build.manifest_file)
    marts = [n for n in manifest["nodes"].values() if n["name"] in public]
    assert {n["name"] for n in marts} >= set(PUBLIC_INTERFACE)
    assert all(n["resource_type"] == "model" and n["schema"] == "marts" for n in marts)
    # the dashboards (exposures) read public marts only
    for exposure in manifest["exposures"].values():
        read = {manifest["nodes"][uid]["name"] for uid in exposure["depends_on"]["nodes"]}
        assert read <= public, (exposure["name"], sorted(read - public))
    for node in marts:
        assert node["config"]["contract"]["enforced"], node["name"]
        for name, col in node["columns"].items():
            assert col.get("data_type"), f"{node['name']}.{name} has no data_type"
            assert col.get("description"), f"{node['name']}.{name} has no description"


def test_every_built_column_is_described(empty_dbt_build: DbtBuild) -> None:
    """Every column the build creates has a description in the project: the raw views
    (sources), every staging, intermediate and mart relation, the seeds, and the masked
    marts (which mirror the marts). Read from the built warehouse, not from the yml, so a
    column a model adds without documenting it fails here."""
    assert empty_dbt_build.build.returncode == 0
    manifest = empty_dbt_build.manifest()
    described: dict[tuple[str, str], set[str]] = {}
    for node in [*manifest["nodes"].values(), *manifest["sources"].values()]:
        if node["resource_type"] not in ("model", "seed", "source"):
            continue
        relation = node.get("alias") or node.get("identifier") or node["name"]
        described[(node["schema"], relation)] = {
            name.lower() for name, col in node["columns"].items() if col["description"].strip()
        }
    for (schema, relation), names in list(described.items()):
        if schema == "marts":
            described[("marts_masked", relation)] = names
    rows = query(
        empty_dbt_build.warehouse,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('raw', 'staging', 'intermediate', 'marts', 'marts_masked', 'seeds')",
    )
    assert {schema for schema, _, _ in rows} >= {"raw", "staging", "intermediate", "marts"}
    unknown = sorted({f"{s}.{t}" for s, t, _ in rows if (s, t) not in described})
    assert not unknown, f"relations no model, seed or source describes: {unknown}"
    missing = sorted(f"{s}.{t}.{c}" for s, t, c in rows if c.lower() not in described[(s, t)])
    assert not missing, f"{len(missing)} of {len(rows)} columns undescribed: {missing}"


# bookkeeping logs without a key: a file seen again is recorded per entity it holds, and
# the entity is not a column of the record; a quarantined line may carry several reasons
KEYLESS = {"stg_ingestion__file_delivery", "stg_ingestion__quarantine"}


def test_every_keyed_model_and_seed_has_a_primary_key_test(empty_dbt_build: DbtBuild) -> None:
    """A key test on every model and seed: `primary_key`, `unique_combination_of_columns`,
    or `unique` and `not_null` on the same column."""
    manifest = empty_dbt_build.manifest()
    tests: dict[str, list[tuple[str, str | None]]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and node.get("test_metadata"):
            attached = node.get("attached_node")
            if attached:
                tests.setdefault(attached, []).append(
                    (node["test_metadata"]["name"], node.get("column_name"))
                )
    without = []
    for uid, node in manifest["nodes"].items():
        if node["resource_type"] not in ("model", "seed") or node["name"] in KEYLESS:
            continue
        found = tests.get(uid, [])
        unique = {c for name, c in found if name == "unique"}
        not_null = {c for name, c in found if name == "not_null"}
        keyed = unique & not_null or any(
            name in ("primary_key", "unique_combination_of_columns") for name, _ in found
        )
        if not keyed:
            without.append(node["name"])
    assert not without, f"no primary-key test: {sorted(without)}"
    assert KEYLESS <= {n["name"] for n in manifest["nodes"].values()}, "stale KEYLESS entry"


def test_docs_generate(empty_dbt_build: DbtBuild) -> None:
    assert empty_dbt_build.build.returncode == 0
    # the build compiled every node into this target: document it without compiling again
    out = empty_dbt_build.dbt(["docs", "generate", "--no-compile"])
    assert out.returncode == 0, out.stdout[-4000:]
    catalog = json.loads((empty_dbt_build.target / "catalog.json").read_text())
    assert any(k.endswith(".fct_deal") for k in catalog["nodes"])
    assert (empty_dbt_build.target / "index.html").exists()


def test_project_vars_mirror_settings() -> None:
    """dbt_project.yml declares every var the pipeline passes, with settings.yml's defaults."""
    project = yaml.safe_load((PROJECT / "dbt_project.yml").read_text(encoding="utf-8"))
    declared = project["vars"]
    passed = load_settings(SETTINGS_FILE, environ={}).dbt_vars()
    for key, value in passed.items():
        assert key in declared, f"var {key} missing from dbt_project.yml"
        assert declared[key] == value, f"var {key}: {declared[key]!r} != settings {value!r}"


def _project_macros_called(sql: str, macros: dict[str, str]) -> set[str]:
    """Names of the project's macros that `sql` calls, directly or through other macros."""
    called: set[str] = set()
    pending = [sql]
    while pending:
        text = pending.pop()
        for name, body in macros.items():
            if name not in called and re.search(rf"\b{re.escape(name)}\s*\(", text):
                called.add(name)
                pending.append(body)
    return called


def test_marts_read_no_source(empty_dbt_build: DbtBuild) -> None:
    """Lineage: raw -> staging -> intermediate -> marts. A mart reads the raw layer only
    through staging models (ref), neither in its SQL nor through a macro it calls (the
    incremental window of fct_call and mart_receivables_aging lives in a macro, rendered
    only on an incremental build, which the manifest's dependencies do not show). The
    models that read raw on purpose carry the tag `reads_raw`."""
    assert empty_dbt_build.build.returncode == 0
    manifest = empty_dbt_build.manifest()
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    macros = {
        m["name"]: m["macro_sql"]
        for m in manifest["macros"].values()
        if m["package_name"] == "crm_warehouse"
    }
    reading_source = {name for name, body in macros.items() if re.search(r"\bsource\s*\(", body)}
    marts = [n for n in models if n["fqn"][1] == "marts"]
    assert len(marts) >= 20
    for node in marts:
        sources = [d for d in node["depends_on"]["nodes"] if d.startswith("source.")]
        assert not sources, f"{node['name']} reads {sources}: ref() a staging model instead"
        assert not re.search(r"\bsource\s*\(", node["raw_code"]), node["name"]
        via = _project_macros_called(node["raw_code"], macros) & reading_source
        assert not via, f"{node['name']} reads a source through the macros {sorted(via)}"
    # past staging, a model reading a source says so (tag reads_raw, and its description)
    readers = {
        n["name"]
        for n in models
        if n["fqn"][1] != "staging"
        and any(d.startswith("source.") for d in n["depends_on"]["nodes"])
    }
    tagged = {n["name"] for n in models if "reads_raw" in n["tags"]}
    assert readers == tagged == {"int_raw_load_counts", "int_duplicate_counts"}
    for node in models:
        if node["name"] in tagged:
            assert "raw layer on purpose" in node["description"], node["name"]


def test_build_artefacts_are_ignored() -> None:
    ignored = (PROJECT / ".gitignore").read_text().split()
    assert {"target/", "logs/", "dbt_packages/"} <= set(ignored)


def test_masked_marts_mirror_every_mart_with_contacts_masked(empty_dbt_build: DbtBuild) -> None:
    """`marts_masked` (what the Analyst's SQL Lab reads) has one view per mart table with the
    same columns; the columns marked `meta: {mask: ...}` are the customers' contacts."""
    assert empty_dbt_build.build.returncode == 0
    cols = query(
        empty_dbt_build.warehouse,
        "select table_schema, table_name, list(column_name order by ordinal_position) "
        "from information_schema.columns where table_schema in ('marts', 'marts_masked') "
        "group by 1, 2",
    )
    views = {
        name
        for (name,) in query(
            empty_dbt_build.warehouse,
            "select view_name from duckdb_views() where schema_name = 'marts_masked'",
        )
    }
    marts = {t: c for s, t, c in cols if s == "marts"}
    masked = {t: c for s, t, c in cols if s == "marts_masked"}
    assert marts and masked == marts
    assert views == set(marts)
    manifest = empty_dbt_build.manifest()
    marked = {
        (n["name"], c): (col.get("config") or {}).get("meta", {}).get("mask")
        or col.get("meta", {}).get("mask")
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
        for c, col in n["columns"].items()
    }
    assert {k: v for k, v in marked.items() if v} == {
        ("dim_customer", "name"): "contact_name",
        ("dim_customer", "primary_phone"): "phone",
        ("dim_customer", "primary_email"): "email",
        **{
            ("fct_call", c): "phone"
            for c in ("caller_e164", "callee_e164", "caller_number", "callee_number")
        },
        ("fct_call", "external_e164"): "phone",
    }


def test_mask_macros_on_hand_made_values(empty_dbt_build: DbtBuild) -> None:
    """mask_phone keeps 3 leading and 2 trailing characters of a number longer than an
    extension (6 characters); mask_email keeps the mailbox's first character and the domain."""
    sql = (
        "select {{ mask_phone(\"'+79161234567'\") }} as phone, "
        "{{ mask_phone(\"'103'\") }} as extension, "
        "{{ mask_phone('null') }} as no_phone, "
        "{{ mask_email(\"'ivan.petrov@mail.ru'\") }} as email, "
        "{{ mask_email(\"'no-at-sign'\") }} as not_an_email"
    )
    out = empty_dbt_build.dbt(["show", "--inline", sql, "--output", "json", "--log-format", "text"])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    shown = json.loads(out.stdout[out.stdout.index("{") : out.stdout.rindex("}") + 1])
    assert shown["show"] == [
        {
            "phone": "+79*******67",
            "extension": "103",
            "no_phone": None,
            "email": "i***@mail.ru",
            "not_an_email": "**********",
        }
    ]
