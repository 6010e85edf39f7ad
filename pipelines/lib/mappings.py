"""Source definitions: the YAML layouts under `sources/<system>/source.yml`.

A *format* (csv, 1c_bank_exchange, xlsx through csv) has one parser; a *layout* is data.
Onboarding a new export of a known kind means writing a YAML mapping, not code.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# canonical type -> DuckDB type of the raw column
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "number": "DOUBLE",
    "decimal": "DECIMAL(18,2)",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "bool": "BOOLEAN",
}

# lineage columns carried by every raw row
LINEAGE_COLUMNS = {
    "_source_file": "VARCHAR",
    "_line": "BIGINT",
    "_file_sha256": "VARCHAR",
    "_load_id": "VARCHAR",
    "_loaded_at": "TIMESTAMP",
}

QUARANTINE_COLUMNS = {
    "load_id": "VARCHAR",
    "source_system": "VARCHAR",
    "entity": "VARCHAR",
    "source_file": "VARCHAR",
    "file_sha256": "VARCHAR",
    "line": "BIGINT",
    "raw_text": "VARCHAR",
    "reason": "VARCHAR",
    "quarantined_at": "TIMESTAMP",
}


class MappingError(ValueError):
    """A source definition is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Column:
    name: str
    source: str | None
    type: str = "string"
    required: bool = False
    min: float | None = None
    values: dict[str, str] | None = None

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]


@dataclass(frozen=True)
class Entity:
    system: str
    name: str
    folder: str
    format: str
    files: tuple[str, ...]
    columns: tuple[Column, ...]
    options: dict[str, Any]
    layouts: tuple[tuple[str, ...], ...] = ()
    filename_fields: dict[str, dict[str, str]] = field(default_factory=dict)
    first_line: str | None = None
    freshness_field: str | None = None
    definition_file: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        """Name of the raw table/view in schema `raw`: `<system>__<entity>`."""
        return f"{self.system}__{self.name}"

    @property
    def key(self) -> str:
        return f"{self.system}/{self.name}"

    def matches(self, path: Path) -> bool:
        """Whether a landed file belongs to this entity (by name, then by first line)."""
        name = path.name.lower()
        if not any(fnmatch.fnmatch(name, pat.lower()) for pat in self.files):
            return False
        if self.first_line is not None:
            with path.open("rb") as fh:
                head = fh.read(len(self.first_line) + 4)
            return head.lstrip(b"\xef\xbb\xbf").startswith(self.first_line.encode("ascii"))
        return True

    def raw_schema(self) -> dict[str, str]:
        """Columns of the raw table, in order: canonical fields, filename fields, lineage."""
        cols = {c.name: c.duckdb_type for c in self.columns}
        for name, spec in self.filename_fields.items():
            cols[name] = DUCKDB_TYPES[spec.get("type", "string")]
        cols.update(LINEAGE_COLUMNS)
        return cols


def _load_file(path: Path) -> list[Entity]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        system, folder = doc["system"], doc["folder"]
        base_format = doc.get("format", "csv")
        base_options = dict(doc.get("options") or {})
        entities = doc["entities"]
    except KeyError as exc:
        raise MappingError(f"{path}: missing key {exc}") from exc
    extra = {
        k: v
        for k, v in doc.items()
        if k not in {"system", "folder", "format", "options", "entities"}
    }
    out = []
    for name, spec in entities.items():
        cols = []
        for col_name, col in (spec.get("columns") or {}).items():
            col = col or {}
            ctype = col.get("type", "string")
            if ctype not in DUCKDB_TYPES:
                raise MappingError(f"{path}: {name}.{col_name}: unknown type {ctype!r}")
            cols.append(
                Column(
                    name=col_name,
                    source=col.get("source"),
                    type=ctype,
                    required=bool(col.get("required", False)),
                    min=col.get("min"),
                    values=col.get("values"),
                )
            )
        if not cols:
            raise MappingError(f"{path}: entity {name!r} declares no columns")
        out.append(
            Entity(
                system=system,
                name=name,
                folder=folder,
                format=spec.get("format", base_format),
                files=tuple(spec.get("files") or ()),
                columns=tuple(cols),
                options={**base_options, **(spec.get("options") or {})},
                layouts=tuple(tuple(lay) for lay in spec.get("layouts") or ()),
                filename_fields=dict(spec.get("filename_fields") or {}),
                first_line=spec.get("first_line"),
                freshness_field=spec.get("freshness_field"),
                definition_file=path,
                extra=extra,
            )
        )
    return out


def _unique_tables(entities: list[Entity]) -> None:
    seen: dict[str, Path | None] = {}
    for ent in entities:
        if ent.table in seen:
            raise MappingError(
                f"{ent.definition_file}: raw table {ent.table} is also declared in {seen[ent.table]}"
            )
        seen[ent.table] = ent.definition_file


def _replace_mode(path: Path) -> bool:
    """Whether a user mapping drops the shipped entities it does not declare (`replace: all`)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    value = doc.get("replace") if isinstance(doc, dict) else None
    if value is None:
        return False
    if value != "all":
        raise MappingError(
            f"{path}: replace: {value!r} is not understood; write `replace: all` or omit it"
        )
    return True


def load_entities(sources_dir: Path, config_dir: Path | None = None) -> list[Entity]:
    """Every entity declared under `sources_dir/*/source.yml` (and `*.yml` beside it),
    with the user's mappings of a configuration folder applied over them.

    A user file `config_dir/sources/<system>.yml` (or `<system>/*.yml`) replaces, entity
    by entity, the shipped entities of the system it names: an entity it declares
    replaces the shipped entity of that name whole; `replace: all` in the file also
    drops the shipped entities it does not declare; a system nobody ships is added.
    Two user files declaring the same entity are an error naming both.
    """
    shipped: list[Entity] = []
    for path in sorted(sources_dir.glob("*/*.yml")):
        shipped.extend(_load_file(path))
    _unique_tables(shipped)
    user_dir = config_dir / "sources" if config_dir is not None else None
    if user_dir is None or not user_dir.is_dir():
        return shipped
    user_files = sorted(
        {*user_dir.glob("*.yml"), *user_dir.glob("*.yaml"), *user_dir.glob("*/*.yml")}
    )
    user: list[Entity] = []
    replaced_systems: set[str] = set()
    for path in user_files:
        declared = _load_file(path)
        user.extend(declared)
        if _replace_mode(path):
            replaced_systems.update(e.system for e in declared)
    _unique_tables(user)
    overridden = {e.table for e in user}
    kept = [e for e in shipped if e.table not in overridden and e.system not in replaced_systems]
    return kept + user


def empty_select(columns: dict[str, str]) -> str:
    """A zero-row SELECT with the given typed columns (for entities with no files yet)."""
    cols = ", ".join(f'cast(null as {t}) as "{n}"' for n, t in columns.items())
    return f"select {cols} where false"
