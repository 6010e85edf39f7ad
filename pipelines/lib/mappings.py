"""Source definitions: the YAML layouts under `sources/<system>/source.yml`.

A *format* (csv, 1c_bank_exchange, xlsx through csv) has one parser; a *layout* is data.
Onboarding a new export of a known kind means writing a YAML mapping, not code.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

# canonical type -> DuckDB type of the raw column. `decimal` keeps source precision (an
# amount with 3-4 decimals is not rounded at load; 28 integer digits, 10 decimals); raw
# files of the earlier DECIMAL(18,2) still read as it (DuckDB's views cast, and Spark
# widens a Parquet decimal whose precision grows at least as much as its scale)
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int": "BIGINT",
    "number": "DOUBLE",
    "decimal": "DECIMAL(38,10)",
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


# keys of a column that derive its value instead of reading one source column
DERIVED_KEYS = ("concat", "regex", "constant")
# where an entity's export date (its daily partition) may come from, tried in order
EXPORT_DATE_SOURCES = ("name", "column", "default", "mtime")


@dataclass(frozen=True)
class Column:
    name: str
    source: str | None
    type: str = "string"
    required: bool = False
    min: float | None = None
    values: dict[str, str] | None = None
    formats: tuple[str, ...] = ()  # `format:` (one or a list), over the entity's *_format
    null_values: tuple[str, ...] = ()  # values read as NULL, besides the options' ones
    derived: dict[str, Any] | None = None  # {concat|regex|constant: ...}, no source column
    default: Any = None  # a literal or a derived spec, used when the value is missing/empty
    description: str | None = None  # what the field holds (dbt's source docs are generated from it)

    @property
    def duckdb_type(self) -> str:
        return DUCKDB_TYPES[self.type]

    @property
    def label(self) -> str:
        """How messages name the column: its source column, else its canonical name."""
        if self.derived is not None:
            return self.name
        return self.source or self.name


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
    # export date: sources tried in order (name, column, default, mtime) and their values
    export_date: dict[str, Any] = field(default_factory=lambda: {"from": ("name", "mtime")})
    ignore: tuple[str, ...] = ()  # globs of files in the system folder that are not exports

    @property
    def table(self) -> str:
        """Name of the raw table/view in schema `raw`: `<system>__<entity>`."""
        return f"{self.system}__{self.name}"

    @property
    def key(self) -> str:
        return f"{self.system}/{self.name}"

    def ignores(self, path: Path, folder_root: Path) -> bool:
        """Whether a file of the system folder `folder_root` matches an `ignore:` glob
        (by its name, or its path under the folder; case-insensitive)."""
        if not self.ignore:
            return False
        try:
            rel = path.relative_to(folder_root).as_posix().lower()
        except ValueError:
            rel = path.name.lower()
        name = path.name.lower()
        return any(
            fnmatch.fnmatch(name, pat.lower()) or fnmatch.fnmatch(rel, pat.lower())
            for pat in self.ignore
        )

    def matches(self, path: Path) -> bool:
        """Whether a landed file belongs to this entity (by name, then by first line).
        Names are matched case-insensitively (`LEAD.csv` matches `lead.csv`)."""
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
        entities = doc.get("entities") or {}  # none: a file of `ignore:` globs only
    except KeyError as exc:
        raise MappingError(f"{path}: missing key {exc}") from exc
    extra = {
        k: v
        for k, v in doc.items()
        if k not in {"system", "folder", "format", "options", "entities", "ignore"}
    }
    ignore = _str_list(doc.get("ignore"), f"{path}: ignore")
    base_export_date = doc.get("export_date")
    out = []
    for name, spec in entities.items():
        cols = []
        for col_name, col in (spec.get("columns") or {}).items():
            cols.append(_column(path, name, col_name, col or {}))
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
                export_date=_export_date(
                    path, name, spec.get("export_date", base_export_date), cols
                ),
                ignore=ignore,
            )
        )
    return out


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    """A YAML value that is one string or a list of strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value)
    raise MappingError(f"{where}: expected a string or a list of strings, got {value!r}")


def _derived_spec(value: Any, where: str) -> dict[str, Any]:
    """Validate a derived value: `{concat: [...]}`, `{regex: {source, pattern}}`,
    `{constant: v}` or `{source: Column}` (the last only as a `default:`)."""
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected a mapping, got {value!r}")
    keys = [k for k in (*DERIVED_KEYS, "source") if k in value]
    if len(keys) != 1:
        raise MappingError(
            f"{where}: write exactly one of concat:, regex:, constant:, source: (got {value!r})"
        )
    if "concat" in value:
        parts = value["concat"]
        if not isinstance(parts, list) or not parts:
            raise MappingError(f"{where}: concat: expected a list of columns and literals")
        for part in parts:
            if not isinstance(part, (str, int, float)) and not (
                isinstance(part, dict) and set(part) == {"text"}
            ):
                raise MappingError(
                    f"{where}: concat: {part!r} is neither a column name nor {{text: ...}}"
                )
    if "regex" in value:
        rx = value["regex"]
        if not isinstance(rx, dict) or not {"source", "pattern"} <= set(rx):
            raise MappingError(f"{where}: regex: expected {{source: Column, pattern: '...'}}")
        try:
            re.compile(str(rx["pattern"]))
        except re.error as exc:
            raise MappingError(f"{where}: regex pattern {rx['pattern']!r}: {exc}") from exc
    return dict(value)


def _column(path: Path, entity: str, name: str, col: dict[str, Any]) -> Column:
    where = f"{path}: {entity}.{name}"
    ctype = col.get("type", "string")
    if ctype not in DUCKDB_TYPES:
        raise MappingError(f"{where}: unknown type {ctype!r}")
    derived_keys = [k for k in DERIVED_KEYS if k in col]
    if len(derived_keys) > 1 or (derived_keys and "source" in col):
        raise MappingError(
            f"{where}: write one of source:, concat:, regex:, constant: (got "
            f"{', '.join(k for k in ('source', *DERIVED_KEYS) if k in col)})"
        )
    derived = None
    if derived_keys:
        key = derived_keys[0]
        derived = _derived_spec(
            {key: col[key], **({"separator": col["separator"]} if "separator" in col else {})},
            where,
        )
    default = col.get("default")
    if isinstance(default, dict):
        default = _derived_spec(default, f"{where}.default")
    elif default is not None and not isinstance(default, (str, int, float, bool)):
        raise MappingError(f"{where}: default: expected a value or a derived mapping")
    return Column(
        name=name,
        source=col.get("source"),
        type=ctype,
        required=bool(col.get("required", False)),
        min=col.get("min"),
        values=col.get("values"),
        formats=_str_list(col.get("format"), f"{where}.format"),
        null_values=_str_list(col.get("null_values"), f"{where}.null_values"),
        derived=derived,
        default=default,
        description=col.get("description"),
    )


def _export_date(path: Path, entity: str, value: Any, cols: list[Column]) -> dict[str, Any]:
    """Normalise `export_date:` to `{"from": (sources in order), "column"?, "default"?}`.

    `name` (the default): a YYYY-MM-DD or YYYY-MM in the file name, else the file's
    modification day; `mtime`: the modification day only; `{column: c}`: the latest value
    of column `c`, else the name, else the modification day; `{default: 2024-01-31}`: the
    name, else that day. `{from: [...], column: ..., default: ...}` states the order.
    """
    where = f"{path}: {entity}.export_date"
    if value is None or value == "name":
        return {"from": ("name", "mtime")}
    if value == "mtime":
        return {"from": ("mtime",)}
    if isinstance(value, (dt.date, str)) and not isinstance(value, dt.datetime):
        value = {"default": value}
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected name, mtime, {{column: ...}} or {{default: ...}}")
    out: dict[str, Any] = {}
    if "column" in value:
        column = str(value["column"])
        match = [c for c in cols if c.name == column or c.source == column]
        if not match or match[0].type not in {"date", "timestamp"}:
            raise MappingError(
                f"{where}: column {column!r} is not a date or timestamp column of {entity}"
            )
        out["column"] = match[0].name
    if "default" in value:
        try:
            out["default"] = dt.date.fromisoformat(str(value["default"]))
        except ValueError as exc:
            raise MappingError(f"{where}: default {value['default']!r} is not YYYY-MM-DD") from exc
    order = value.get("from")
    if order is None:
        order = [s for s in ("column", "name", "default") if s == "name" or s in out]
        order.append("mtime")
    order = list(_str_list(order, f"{where}.from"))
    unknown = [s for s in order if s not in EXPORT_DATE_SOURCES]
    if unknown:
        raise MappingError(f"{where}: from: {unknown} not among {list(EXPORT_DATE_SOURCES)}")
    for needed in ("column", "default"):
        if needed in order and needed not in out:
            raise MappingError(f"{where}: from: lists {needed} but no `{needed}:` is given")
    out["from"] = tuple(order)
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
    shipped_files = sorted(sources_dir.glob("*/*.yml"))
    for path in shipped_files:
        shipped.extend(_load_file(path))
    _unique_tables(shipped)
    user_dir = config_dir / "sources" if config_dir is not None else None
    if user_dir is None or not user_dir.is_dir():
        return _system_ignores(shipped, shipped_files)
    user_files = sorted(
        {*user_dir.glob("*.yml"), *user_dir.glob("*.yaml"), *user_dir.glob("*/*.yml")}
    )
    user: list[Entity] = []
    replaced_systems: set[str] = set()
    for path in user_files:
        user.extend(_load_file(path))
        if _replace_mode(path):
            replaced_systems.add(str((yaml.safe_load(path.read_text(encoding="utf-8")))["system"]))
    _unique_tables(user)
    overridden = {e.table for e in user}
    kept = [e for e in shipped if e.table not in overridden and e.system not in replaced_systems]
    return _system_ignores(kept + user, [*shipped_files, *user_files])


def _system_ignores(entities: list[Entity], files: list[Path]) -> list[Entity]:
    """`ignore:` globs are the system folder's: each entity of a folder gets the globs of
    every mapping file of that folder, including a file that declares no entity (a user's
    mapping of a few entities, or of `ignore:` only, also keeps the shipped entities from
    claiming the ignored files: `*FieldHistory.csv` is not loaded as a Salesforce object)."""
    globs: dict[str, list[str]] = {}
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        folder = globs.setdefault(str(doc.get("folder")), [])
        found = _str_list(doc.get("ignore"), f"{path}: ignore")
        folder.extend(g for g in found if g not in folder)
    for ent in entities:
        globs.setdefault(ent.folder, [])
    return [
        e if e.ignore == tuple(globs[e.folder]) else replace(e, ignore=tuple(globs[e.folder]))
        for e in entities
    ]


def empty_select(columns: dict[str, str]) -> str:
    """A zero-row SELECT with the given typed columns (for entities with no files yet)."""
    cols = ", ".join(f'cast(null as {t}) as "{n}"' for n, t in columns.items())
    return f"select {cols} where false"
