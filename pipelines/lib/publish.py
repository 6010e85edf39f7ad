"""Build-and-swap of the served warehouse, kept versions and rollback.

DuckDB allows one writer or many readers per file, so readers must never hold the file
being written. A run builds `<warehouse>.build`, checkpoints and closes it, then
`os.replace()`s it over the served file (same folder: an atomic rename; readers that
already opened the old file keep reading it, new ones get the new file). Each published
version is also hard-linked into `<warehouse>.versions/` and the newest N are kept.

Beside the served file lives its masked copy, `<stem>.masked.duckdb` (only the masked
marts, as tables: what SQL Lab users other than Admin are connected to;
`pipelines.lib.masked`). Publish and rollback rewrite it from the version they serve,
built under a temporary name and swapped in the same way.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb

from pipelines.lib.masked import build_masked, masked_path, write_masked


def versions_dir(served: Path) -> Path:
    return served.with_name(served.name + ".versions")


def list_versions(served: Path) -> list[Path]:
    """Kept versions, oldest first (names are sortable timestamps)."""
    d = versions_dir(served)
    return sorted(d.glob("*.duckdb")) if d.is_dir() else []


def publish(build: Path, served: Path, keep: int = 3) -> list[tuple[str, int]]:
    """Checkpoint `build`, swap it in as `served`, keep it as a version. Returns mart sizes."""
    if not build.exists():
        raise FileNotFoundError(f"{build} does not exist: nothing was built to publish")
    con = duckdb.connect(str(build))
    try:
        con.execute("checkpoint")
        marts = con.execute(
            "select table_name, estimated_size from duckdb_tables() where schema_name = 'marts' "
            "order by 1"
        ).fetchall()
    finally:
        con.close()
    masked = masked_path(served)
    masked_build = build_masked(build, masked)
    os.replace(build, served)
    os.replace(masked_build, masked)
    d = versions_dir(served)
    d.mkdir(exist_ok=True)
    os.link(served, d / f"{_next_stamp(list_versions(served))}.duckdb")
    for old in list_versions(served)[:-keep]:
        old.unlink()
    return [(str(n), int(s)) for n, s in marts]


def _next_stamp(kept: list[Path]) -> str:
    """A version name that sorts after every kept one.

    Taken from one clock reading (seconds and microseconds of the same instant: two
    readings can straddle a second and sort a newer version first), and moved past the
    newest kept name if the clock stands still or went back.
    """
    now = time.time_ns() // 1000
    stamp = (
        time.strftime("%Y%m%dT%H%M%S", time.localtime(now // 1_000_000)) + f".{now % 1_000_000:06d}"
    )
    newest = kept[-1].stem if kept else ""
    # A name extended by one character sorts right after it.
    return stamp if stamp > newest else newest + "1"


def rollback(served: Path) -> Path:
    """Serve the version before the current one again (atomically); drop the current one."""
    versions = list_versions(served)
    current = [v for v in versions if served.exists() and os.path.samefile(v, served)]
    older = [v for v in versions if v not in current]
    if not older:
        raise RuntimeError(f"no earlier version of {served} is kept in {versions_dir(served)}")
    target = older[-1]
    tmp = served.with_name(served.name + ".rollback")
    tmp.unlink(missing_ok=True)
    os.link(target, tmp)
    os.replace(tmp, served)
    write_masked(served, masked_path(served))
    for v in current:
        v.unlink()
    return target
