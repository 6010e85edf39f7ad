"""Write dbt's source declarations of the raw layer from the shipped source mappings.

The mappings (`sources/<system>/source.yml`) are the one definition of every raw table:
its columns, their types, where each is read from. dbt's
`dbt_project/models/staging/<system>/_<system>__sources.yml` are generated from them by
this script, never edited by hand; `--check` (run by the fast test tier) fails when a
committed file differs from what the mappings give.

    python scripts/generate_dbt_sources.py          # rewrite the files
    python scripts/generate_dbt_sources.py --check  # exit 1 and name the stale files
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.lib.mappings import (  # noqa: E402
    DUCKDB_TYPES,
    LINEAGE_COLUMNS,
    Column,
    Entity,
    load_entities,
)

HEADER = (
    "# Generated from sources/{system}/source.yml by scripts/generate_dbt_sources.py:\n"
    "# edit the mapping, then run the script (a fast test checks the two agree).\n"
)
SOURCE_SUFFIX = "Append-only Parquet exposed as `raw.<system>__<entity>` views; every row carries lineage columns."
LINEAGE_DESCRIPTIONS = {
    "_source_file": "Landed file the row came from.",
    "_line": "Line (record) number in that file.",
    "_file_sha256": "SHA-256 of the file content.",
    "_load_id": "Ingestion run that loaded the row.",
    "_loaded_at": "When the row was loaded.",
}


def _dbt_type(duckdb_type: str) -> str:
    return duckdb_type.lower()


def _column_description(col: Column) -> str:
    if col.description:
        text = col.description.strip()
    elif col.derived is not None:
        text = "Derived from other export fields."
    elif col.source:
        text = f"From export field `{col.source}`."
    else:
        text = "Export field of the same name."
    if col.required:
        text += " Required (rows without it are quarantined)."
    return text


def _table(entity: Entity) -> dict[str, Any]:
    columns = [
        {
            "name": c.name,
            "data_type": _dbt_type(c.duckdb_type),
            "description": _column_description(c),
        }
        for c in entity.columns
    ]
    for name, spec in entity.filename_fields.items():
        columns.append(
            {
                "name": name,
                "data_type": _dbt_type(DUCKDB_TYPES[spec.get("type", "string")]),
                "description": "Parsed from the file name.",
            }
        )
    for name, dtype in LINEAGE_COLUMNS.items():
        columns.append(
            {"name": name, "data_type": _dbt_type(dtype), "description": LINEAGE_DESCRIPTIONS[name]}
        )
    files = ", ".join(entity.files) if entity.files else "(matched by first line)"
    return {
        "name": entity.table,
        "description": f"Raw `{entity.name}` rows from files {files}.",
        "columns": columns,
    }


def render(sources_dir: Path) -> dict[Path, str]:
    """The generated YAML of each system, keyed by its path under the repository."""
    by_system: dict[str, list[Entity]] = {}
    for entity in load_entities(sources_dir):
        by_system.setdefault(entity.system, []).append(entity)
    out: dict[Path, str] = {}
    for system, entities in sorted(by_system.items()):
        description = str(entities[0].extra.get("description") or "").strip()
        if not description:
            raise SystemExit(f"sources/{system}/source.yml: add a top-level `description:`")
        doc = {
            "version": 2,
            "sources": [
                {
                    "name": system,
                    "description": f"{description} {SOURCE_SUFFIX}",
                    "schema": "raw",
                    "tables": [_table(e) for e in entities],
                }
            ],
        }
        path = Path("dbt_project/models/staging") / system / f"_{system}__sources.yml"
        body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
        out[path] = HEADER.format(system=system) + body
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed file is stale")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in render(ROOT / "sources").items():
        path = ROOT / rel
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(str(rel))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")
    if stale:
        print(
            "stale (the mappings say otherwise): "
            + ", ".join(stale)
            + "\nrun: python scripts/generate_dbt_sources.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
