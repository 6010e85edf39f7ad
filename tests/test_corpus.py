"""The bad-input corpus (tests/corpus/): every file produces exactly its documented outcome.

Each case folder is a small landing folder; its files are ingested with the real ingestion
and compared with tests/corpus/expected.yml: status, rows read and loaded, every
quarantined line with its exact reason, warnings, and, where listed, the data-quality
checks that must fail on the load. No row is lost: read = loaded + quarantined.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.lib.ingest import ingest_file, landed_files, quarantine_unrecognised
from pipelines.lib.mappings import load_entities
from pipelines.lib.quality import run_suite
from pipelines.lib.quality.duck import raw_connection
from pipelines.lib.quality.rules import load_config, pipeline_stages, raw_suite
from pipelines.lib.warehouse import create_raw_views

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
EXPECTED = yaml.safe_load((CORPUS / "expected.yml").read_text(encoding="utf-8"))
ENTITIES = load_entities(ROOT / "sources")
NOTES = {"staging", "failing_checks"}
# fixture sets with a configuration folder of their own, loaded end to end by their test
END_TO_END = {"onboarding_e2e"}  # tests/test_onboarding.py


def test_every_case_folder_is_documented() -> None:
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()} - END_TO_END
    assert folders == set(EXPECTED)
    for case, spec in EXPECTED.items():
        files = {
            str(p.relative_to(CORPUS / case)) for p in (CORPUS / case).rglob("*") if p.is_file()
        }
        assert files == {k.split("#")[0] for k in spec if k not in NOTES}, case


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_corpus_case_has_its_documented_outcome(case: str, tmp_path: Path) -> None:
    landing, data, spec = CORPUS / case, tmp_path / "data", EXPECTED[case]
    got: dict[str, dict] = {}
    claimed = []
    for entity in ENTITIES:
        for path in landed_files(landing, entity):
            rel = str(path.relative_to(landing))
            res = ingest_file(path, entity, data, f"load-{case}", display_path=rel)
            claimed.append(entity)
            outcome: dict[str, object] = {
                "status": res.status, "read": res.rows_read, "loaded": res.rows_loaded,
                "table": entity.table,
            }  # fmt: skip
            if res.duplicate_of:
                outcome["duplicate_of"] = res.duplicate_of
            if res.warnings:
                outcome["warnings"] = res.warnings
            if res.encoding == "utf-16":
                outcome["encoding"] = res.encoding
            assert res.rows_read == res.rows_loaded + res.rows_quarantined, rel
            key = rel if f"{rel}#{entity.table}" not in spec else f"{rel}#{entity.table}"
            got[key] = outcome
    for rel in quarantine_unrecognised(landing, data, ENTITIES, f"load-{case}"):
        got[rel] = {"table": "_unrecognised___file"}
    con = duckdb.connect()
    create_raw_views(con, data, ENTITIES)
    for key, outcome in got.items():
        table = outcome.pop("table")
        outcome["quarantine"] = [
            [line, reason]
            for line, reason in con.execute(
                "select line, reason from raw.quarantine "
                "where source_file = ? and source_system || '__' || entity = ? order by line",
                [key.split("#")[0], table],
            ).fetchall()
        ]
    con.close()
    assert got == {k: v for k, v in spec.items() if k not in NOTES}

    if "failing_checks" in spec:
        config = load_config(ROOT / "quality" / "suites.yml")
        stages = pipeline_stages(ROOT / "dbt_project" / "seeds")
        (entity,) = {e.table: e for e in claimed}.values()
        con = raw_connection(data, ENTITIES)
        _, outcomes = run_suite(con, raw_suite(entity, config, stages), engine="sql")
        con.close()
        assert sorted(o.rule.name for o in outcomes if not o.passed) == spec["failing_checks"]
