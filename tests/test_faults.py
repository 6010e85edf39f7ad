"""Fault tests, each on a real `crmwh run` in a subprocess, no mocks (docs/data-quality.md,
"Faults of a real run").

- SIGKILL of the whole run (its process group: the CLI and its dbt child) during ingest,
  during dbt and during publish: the served warehouse stays intact and answers queries,
  and the next run completes with marts equal, row by row, to a clean run's.
- Broken files (truncated, wrong encoding, missing / extra / renamed column) and files
  delivered again under another name: the outcome in docs/data-quality.md's table.
- The row-accounting invariant (rows read = loaded + quarantined), re-counted from the raw
  layer on every run: a tampered raw file makes the run fail loudly and publish nothing.

The moment to kill is found by polling the run's log and files, never by fixed sleeps.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.mappings import load_entities
from pipelines.lib.warehouse import create_raw_views
from tests.conftest import CRMWH, ROOT, Built, crmwh, query

ENTITIES = load_entities(ROOT / "sources")
POLL = 0.05  # seconds between looks at the run's log and files
PHASE_TIMEOUT = 3600  # a loaded 2-core CI machine is slow; the poll ends as soon as it can


@dataclass
class Workspace:
    landing: Path
    data: Path
    warehouse: Path
    env: dict[str, str]
    logs: Path

    @property
    def args(self) -> list[str]:
        return ["--landing", str(self.landing), "--warehouse", str(self.warehouse)]


def workspace(demo: Built, base: Path, copy_data: bool) -> Workspace:
    """A copy of the demo's landing folder and served warehouse (the last good publish);
    with `copy_data` also its raw layer, else an empty one (everything is ingested again)."""
    ws = Workspace(base / "landing", base / "data", base / "warehouse.duckdb", {}, base / "logs")
    shutil.copytree(demo.landing, ws.landing)
    if copy_data:
        shutil.copytree(demo.data, ws.data)
    shutil.copyfile(demo.warehouse, ws.warehouse)
    ws.logs.mkdir()
    ws.env = dict(
        demo.env,
        CRMWH_PATHS__DATA=str(ws.data),
        CRMWH_PATHS__STATE=str(base / "state"),
        CRMWH_QUALITY__DATA_DOCS="false",
    )
    return ws


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def answers(warehouse: Path) -> int:
    """The served warehouse opens read-only and answers a mart query (what Superset does)."""
    (n,) = query(warehouse, "select count(*) from marts.fct_deal")[0]
    assert n > 0
    return n


# --------------------------------------------------------------------------- a running run


class Run:
    """`crmwh run -v` in its own process group, its output in files that the test polls."""

    def __init__(self, ws: Workspace, name: str) -> None:
        self.out, self.err = ws.logs / f"{name}.out", ws.logs / f"{name}.err"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [*CRMWH, "run", "-v", *ws.args],
                cwd=ROOT,
                env=ws.env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: the CLI and dbt under it
            )
        self.started = time.monotonic()
        self._seen = {path: "" for path in (self.err, self.out)}
        self._offset = dict.fromkeys(self._seen, 0)
        self._decoder = {
            path: codecs.getincrementaldecoder("utf-8")("replace") for path in self._seen
        }

    def _grown(self, path: Path) -> str:
        """The file's text so far, reading only the bytes appended since the last look."""
        with path.open("rb") as fh:
            fh.seek(self._offset[path])
            chunk = fh.read()
        self._offset[path] += len(chunk)
        self._seen[path] += self._decoder[path].decode(chunk)
        return self._seen[path]

    def log(self) -> str:
        """stderr then stdout so far. Read incrementally: the `-v` log of a demo run grows to
        megabytes and is polled every POLL seconds, and re-reading it whole each time took
        CPU from the run under test."""
        return self._grown(self.err) + self._grown(self.out)

    def wait_for(self, what: str, condition: Callable[[], bool]) -> float:
        """Poll until `condition` holds while the run is alive; seconds it took."""
        deadline = time.monotonic() + PHASE_TIMEOUT
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(
                    f"the run ended (exit {self.proc.returncode}) before {what}:\n"
                    + self.log()[-6000:]
                )
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no {what} within {PHASE_TIMEOUT}s:\n{self.log()[-6000:]}")
            time.sleep(POLL)
        return time.monotonic() - self.started

    def kill(self, group: bool = True) -> None:
        """SIGKILL to the whole group (a crash, an OOM kill of the service), or to the CLI
        process alone (`kill -9 <pid>`): its dbt child must then die with it."""
        try:
            if group:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=60)
        deadline = time.monotonic() + 60
        while _group_alive(self.proc.pid):
            if time.monotonic() > deadline:
                survivors = subprocess.run(
                    ["ps", "-o", "pid,args", "-g", str(self.proc.pid)],
                    capture_output=True, text=True,
                ).stdout  # fmt: skip
                os.killpg(self.proc.pid, signal.SIGKILL)
                pytest.fail(f"processes of the killed run survived it:\n{survivors}")
            time.sleep(POLL)

    def finish(self, timeout: float = PHASE_TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def raw_files(data: Path) -> list[Path]:
    return list((data / "raw").rglob("*.parquet")) if (data / "raw").is_dir() else []


def manifest_entries(data: Path) -> int:
    d = data / "manifest"
    return len(list(d.glob("*.json"))) if d.is_dir() else 0


# --------------------------------------------------------------------------- marts compared


def _norm(value: object) -> object:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, Decimal):
        return round(value, 6)
    return value


LOAD_COLUMNS = {"load_id", "_load_id", "loaded_at", "_loaded_at", "checked_at"}

# Values measured up to the moment of the build (var `as_of` unset: "now"), which two runs
# minutes apart cannot share: an open stage visit's days in stage so far.
BUILD_MOMENT = {
    ("fct_stage_visit", "days_in_stage"): "case when is_open then null else {} end",
    ("mart_stuck_deals", "age_days"): "null",  # every row is an open visit, aged at build time
}


def mart_rows(warehouse: Path) -> dict[str, list[tuple]]:
    """Every mart table, rows sorted, floats rounded to 1e-6; columns that name a load
    (load ids, load times) left out. mart_data_quality is per load, and an interrupted
    ingest spreads the same files over two loads: it is compared summed per table."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        out: dict[str, list[tuple]] = {}
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts' order by 1"
            ).fetchall()
        ]
        for t in tables:
            cols = [
                c
                for (c,) in con.execute(
                    "select column_name from duckdb_columns() where schema_name = 'marts' "
                    "and table_name = ? order by column_index",
                    [t],
                ).fetchall()
                if c not in LOAD_COLUMNS
            ]
            if t == "mart_data_quality":
                sql = (
                    "select source, table_name, sum(rows_read), sum(rows_loaded), "
                    "sum(rows_quarantined), sum(raw_rows), sum(staged_rows), sum(deleted_rows), "
                    "sum(files) from marts.mart_data_quality group by all order by all"
                )
            else:
                exprs = [BUILD_MOMENT.get((t, c), "{}").format(f'"{c}"') for c in cols]
                sql = f"select {', '.join(exprs)} from marts.{t}"
            rows = [tuple(_norm(v) for v in r) for r in con.execute(sql).fetchall()]
            out[t] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def assert_same_marts(got: Path, expected: Path) -> None:
    a, b = mart_rows(got), mart_rows(expected)
    assert sorted(a) == sorted(b), "mart tables differ"
    for table in b:
        if a[table] != b[table]:
            extra = [r for r in a[table] if r not in b[table]][:3]
            missing = [r for r in b[table] if r not in a[table]][:3]
            pytest.fail(
                f"marts.{table}: {len(a[table])} rows vs {len(b[table])} in the clean run; "
                f"only here: {extra}; only in the clean run: {missing}"
            )


# --------------------------------------------------------------------------- kill -9


def test_kill_9_during_ingest_dbt_and_publish_leaves_the_served_warehouse_intact(
    demo_build: Built, tmp_path: Path
) -> None:
    """Three runs killed in turn (ingest, dbt, publish), then one to completion.

    Ingestion starts from an empty raw layer so the first run is killed mid-ingest; each
    later run resumes from what the killed one left (a half-written raw layer, a
    half-built `.build` file, a publish cut short)."""
    ws = workspace(demo_build, tmp_path, copy_data=False)
    served_sha = sha256(ws.warehouse)
    served_deals = answers(ws.warehouse)
    build = ws.warehouse.with_name(ws.warehouse.name + ".build")
    timings: dict[str, float] = {}

    # 1. during ingest: some raw files written, dbt not started
    run = Run(ws, "1-ingest")
    timings["ingest"] = run.wait_for(
        "an ingested file", lambda: manifest_entries(ws.data) >= 1 and len(raw_files(ws.data)) >= 1
    )
    run.kill()
    assert not build.exists(), "the kill was meant to land before dbt"
    assert manifest_entries(ws.data) < 40, "the kill was meant to land during ingest"
    assert sha256(ws.warehouse) == served_sha and answers(ws.warehouse) == served_deals

    # 2. during dbt: the build file exists and dbt has materialized models in it
    run = Run(ws, "2-dbt")
    timings["dbt"] = run.wait_for(
        "a dbt model built",
        lambda: build.exists() and "dbt_models - ASSET_MATERIALIZATION" in run.log(),
    )
    run.kill(group=False)  # the CLI only: its dbt child dies with it (no orphan writer)
    assert build.exists(), "the kill was meant to land while dbt builds"
    assert "warehouse__published - STEP_START" not in run.log()
    assert sha256(ws.warehouse) == served_sha and answers(ws.warehouse) == served_deals

    # 3. during publish: the publish step has started
    run = Run(ws, "3-publish")
    timings["publish"] = run.wait_for(
        "the publish step", lambda: "warehouse__published - STEP_START" in run.log()
    )
    run.kill()
    swapped = sha256(ws.warehouse) != served_sha
    answers(ws.warehouse)  # the old file, or the complete new one: never a half-written one
    if swapped:  # the rename had happened: the new file is complete and has every mart
        assert_same_marts(ws.warehouse, demo_build.warehouse)
    print(f"kill during publish landed {'after' if swapped else 'before'} the swap")

    # 4. the next run completes, and its marts equal the clean run's, row by row
    run = Run(ws, "4-complete")
    code = run.finish()
    assert code == 0, run.log()[-6000:]
    assert "published in" in run.out.read_text()
    assert not build.exists()
    assert_same_marts(ws.warehouse, demo_build.warehouse)
    assert not list((ws.data / "tmp").glob("ingest-*")), "temporary files of killed runs remain"
    assert not list(ws.data.glob("**/*.parquet.tmp")), "partial Parquet files of killed runs remain"
    print("seconds from start to kill: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))


# --------------------------------------------------------------------------- broken files

CLOUD = "telephony_cloud"


def _cloud_source(landing: Path) -> tuple[list[str], list[str]]:
    """Header and data lines of the demo's biggest cloud PBX call log (plain UTF-8 CSV)."""
    monthly = (landing / CLOUD).glob("calls_????-??.csv")  # the demo's, not the broken ones
    biggest = max(monthly, key=lambda p: p.stat().st_size)
    lines = biggest.read_text(encoding="utf-8").splitlines()
    return lines[0].split(","), lines[1:]


def _with_columns(header: list[str], rows: list[str], change: Callable[[list[str]], None]) -> str:
    table = [header[:], *(r.split(",") for r in rows)]
    for row in table:
        change(row)
    return "\n".join(",".join(r) for r in table) + "\n"


def broken_cloud_files(landing: Path) -> dict[str, bytes]:
    """Call logs derived from a real one, each with one fault. Returns name -> bytes."""
    header, rows = _cloud_source(landing)
    i_start, i_status = header.index("started_at"), header.index("status")
    text = "\n".join([",".join(header), *rows]) + "\n"
    half = rows[: len(rows) // 2]
    cut = rows[len(rows) // 2]
    truncated = "\n".join([",".join(header), *half, cut[: cut.index(",", 30)]])

    def drop_started(r: list[str]) -> None:
        del r[i_start]

    def add_region(r: list[str]) -> None:
        r.append("region" if r[0] == "call_id" else "Moscow")

    def rename_status(r: list[str]) -> None:
        if r[0] == "call_id":
            r[i_status] = "call_status"

    def rename_call_id(r: list[str]) -> None:
        if r[0] == "call_id":
            r[0] = "id"

    # bytes no declared encoding (UTF-8, Windows-1251) can decode, in every 50th row
    invalid = b"".join(
        (line + "\n").encode().replace(b",", b"\x98,", 1) if k % 50 == 1 else (line + "\n").encode()
        for k, line in enumerate([",".join(header), *rows])
    )
    return {
        "calls_2027-01_truncated.csv": truncated.encode(),
        "calls_2027-01_utf16.csv": text.encode("utf-16"),
        "calls_2027-01_invalid_bytes.csv": invalid,
        "calls_2027-01_missing_column.csv": _with_columns(header, rows, drop_started).encode(),
        "calls_2027-01_extra_column.csv": _with_columns(header, rows, add_region).encode(),
        "calls_2027-01_renamed_optional.csv": _with_columns(header, rows, rename_status).encode(),
        "calls_2027-01_renamed_required.csv": _with_columns(header, rows, rename_call_id).encode(),
    }


REDELIVERED = {  # a file of the demo delivered again under another name
    "telephony_asterisk/Master.csv": "telephony_asterisk/Master_resent.csv",
    "crm_bitrix/deals_2026-11-20.csv": "crm_bitrix/deals_2026-11-20 (1).csv",
    "accounting_1c/invoices.csv": "accounting_1c/invoices_copy.csv",
    "accounting_1c/statement_2026-11.txt": "accounting_1c/statement_2026-11 (2).txt",
}


def test_broken_and_redelivered_files_have_their_documented_outcome(
    demo_build: Built, tmp_path: Path
) -> None:
    ws = workspace(demo_build, tmp_path, copy_data=True)
    for src, dst in REDELIVERED.items():
        shutil.copyfile(ws.landing / src, ws.landing / dst)
    broken = broken_cloud_files(ws.landing)
    for name, body in broken.items():
        (ws.landing / CLOUD / name).write_bytes(body)
    _, rows = _cloud_source(ws.landing)
    n = len(rows)
    raw_counts_sql = " union all ".join(
        f"select '{e.table}', count(*) from raw.{e.table}" for e in ENTITIES if e.name != "call"
    )
    before = query(ws.warehouse, raw_counts_sql)

    done = crmwh(["run", *ws.args], ws.env, timeout=PHASE_TIMEOUT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-6000:]

    # Redelivered under another name: 0 new rows anywhere, each listed as a redelivery.
    assert query(ws.warehouse, raw_counts_sql) == before
    assert set(query(ws.warehouse, "select source_file, duplicate_of from raw.file_delivery")) >= {
        (dst, src) for src, dst in REDELIVERED.items()
    }

    def outcome(name: str) -> tuple[int, int, int, list[tuple[int, str]]]:
        shown = f"{CLOUD}/{name}"
        read, loaded, quarantined = query(
            ws.warehouse,
            "select rows_read, rows_loaded, rows_quarantined from raw.load_manifest "
            "where source_file = ?",
            [shown],
        )[0]
        reasons = query(
            ws.warehouse,
            "select line, reason from raw.quarantine where source_file = ? order by line",
            [shown],
        )
        assert read == loaded + quarantined == loaded + len(reasons)
        return read, loaded, quarantined, reasons

    # truncated mid-row: the rows before the cut load, the cut row is quarantined
    read, loaded, _, reasons = outcome("calls_2027-01_truncated.csv")
    assert (read, loaded) == (n // 2 + 1, n // 2)
    assert [(line, r.split(":")[0]) for line, r in reasons] == [(n // 2 + 2, "MISSING COLUMNS")]

    # another encoding than declared, named by its byte-order mark (UTF-16, Excel's
    # "Unicode text"): decoded by the mark, every row loaded
    assert outcome("calls_2027-01_utf16.csv")[:3] == (n, n, 0)

    # bytes invalid in every declared encoding: those rows quarantined, the rest loaded
    bad_lines = [k + 1 for k in range(1, n + 1) if k % 50 == 1]
    read, loaded, _, reasons = outcome("calls_2027-01_invalid_bytes.csv")
    assert (read, loaded) == (n, n - len(bad_lines))
    assert [line for line, _ in reasons] == bad_lines
    assert {r for _, r in reasons} == {
        "invalid byte sequence for encoding utf-8, cp1251 (tried in order; add the file's "
        "encoding to options `encoding:` in sources/cloud_pbx/source.yml)"
    }

    # a required column missing, or renamed: every row quarantined, naming the column
    for name, column in (
        ("calls_2027-01_missing_column.csv", "started_at"),
        ("calls_2027-01_renamed_required.csv", "call_id"),
    ):
        read, loaded, _, reasons = outcome(name)
        assert (read, loaded, len(reasons)) == (n, 0, n), name
        assert {r for _, r in reasons} == {
            f"missing required column(s) '{column}' (set `source:` of the column in "
            "sources/cloud_pbx/source.yml to the file's header)"
        }
        assert [line for line, _ in reasons] == list(range(2, n + 2))

    # an extra column is tolerated: every row loaded
    assert outcome("calls_2027-01_extra_column.csv")[:3] == (n, n, 0)

    # an optional column renamed: rows load with the column empty, a warning in the log
    # and the completeness check of the column fails (a warning, not blocking)
    assert outcome("calls_2027-01_renamed_optional.csv")[:3] == (n, n, 0)
    assert query(
        ws.warehouse,
        "select count(*), count(status) from raw.cloud_pbx__call where _source_file = ?",
        [f"{CLOUD}/calls_2027-01_renamed_optional.csv"],
    ) == [(n, 0)]
    assert (
        f"{CLOUD}/calls_2027-01_renamed_optional.csv: column 'status' is missing; loaded as empty"
        in done.stderr
    )
    completeness = [
        line
        for line in done.stdout.splitlines()
        if line.startswith("  optional columns emptier than their threshold")
    ]
    assert len(completeness) == 1 and "raw/cloud_pbx__call.status" in completeness[0]


# --------------------------------------------------------------------------- row accounting


def test_a_broken_row_accounting_fails_the_run_loudly_and_publishes_nothing(
    demo_build: Built, tmp_path: Path
) -> None:
    """Rows vanish from a raw file after it was loaded (a disk, a hand edit, a bug): the
    re-count of every run no longer matches the manifest, the blocking check fails, dbt
    and publish do not run, and the served warehouse is left as it was."""
    ws = workspace(demo_build, tmp_path, copy_data=True)
    con = duckdb.connect()
    create_raw_views(con, ws.data, ENTITIES)
    (source_file, n) = con.execute(
        "select _source_file, count(*) from raw.salesforce__user group by 1"
    ).fetchone()
    con.close()
    (target,) = list((ws.data / "raw" / "salesforce" / "user").glob("*.parquet"))
    tampered = target.with_name("tampered.tmp")
    con = duckdb.connect()
    con.execute(
        f"copy (select * from read_parquet('{target}') order by _line limit {n - 1}) "
        f"to '{tampered}' (format parquet)"
    )
    con.close()
    os.replace(tampered, target)
    served_sha = sha256(ws.warehouse)

    done = crmwh(["run", *ws.args], ws.env, timeout=PHASE_TIMEOUT)
    assert done.returncode == 1, done.stdout[-4000:]
    assert "check raw/salesforce__user:row_accounting failed (blocking)" in done.stdout
    assert f"{source_file}: read {n} != loaded {n - 1} + quarantined 0" in done.stderr
    assert "FAILED, served warehouse left unchanged" in done.stdout
    assert sha256(ws.warehouse) == served_sha
    assert not re.search(r"warehouse__published - STEP_SUCCESS", done.stderr)
