"""A landed file's identity and remembered failures: its content checksum, the `file_key`
the manifest is keyed by (checksum plus values its name carries), the record of a file version
that could not be read and the mapping fingerprint that decides when it is retried, a new load
id, DuckDB-safe literal paths and atomic writes of small JSON records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from pipelines.lib.mappings import Entity

CHUNK = 1 << 20


def filename_values(entity: Entity, name: str) -> dict[str, str | None]:
    """Values an entity takes from the file name (e.g. a snapshot date); None where the
    name does not match (the field's `default:` then applies, see `_split_and_write`)."""
    out: dict[str, str | None] = {}
    for field_name, spec in entity.filename_fields.items():
        m = re.search(spec["pattern"], name)
        out[field_name] = m.group(1) if m else None
    return out


def file_key(sha: str, entity: Entity, name: str) -> str:
    """A file's identity: its content checksum, plus the values its name carries.

    Two byte-identical daily snapshots of different dates (a quiet weekend) are two
    snapshots, not a redelivery; the same snapshot under another name is a redelivery.
    """
    values = filename_values(entity, name)
    if not values:
        return sha
    return hashlib.sha256(f"{sha}|{json.dumps(values, sort_keys=True)}".encode()).hexdigest()


def failed_path(data_dir: Path, entity: Entity, key: str) -> Path:
    """Where the failure to read one file version (by `file_key`) is remembered."""
    return data_dir / "failed" / f"{entity.table}__{key}.json"


def mapping_fingerprint(entity: Entity) -> str:
    """A checksum of what decides how a file is read: the mapping file's bytes (and the
    entity). A remembered failure is retried when the file or its mapping changes."""
    h = hashlib.sha256(entity.table.encode())
    if entity.definition_file is not None and entity.definition_file.is_file():
        h.update(entity.definition_file.read_bytes())
    return h.hexdigest()


def failed_record(data_dir: Path, entity: Entity, key: str) -> dict[str, Any] | None:
    """The remembered failure of this file version, if the mapping is still the same."""
    path = failed_path(data_dir, entity, key)
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if rec.get("mapping_sha256") != mapping_fingerprint(entity):
        return None
    return rec


def duck_path(path: Path) -> str:
    """`path` as a literal file name for DuckDB's readers, which expand `*`, `?` and `[...]`
    as a glob even in a list: each of those characters is written as a one-character class
    (`?` -> `[?]`), so a file named `leads_2026-11-2?.csv` reads only itself."""
    text = str(path)
    if not any(ch in text for ch in "*?["):
        return text
    return re.sub(r"([*?\[])", r"[\1]", text)


def new_load_id() -> str:
    """A sortable, unique id for one ingestion run."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{uuid.uuid4().hex[:6]}"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
