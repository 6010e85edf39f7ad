"""`crmwh bench`: the performance benchmark (docs/benchmark.md), at one scale, in one run.

    crmwh bench --scale small|medium|large [--out DIR] [--seed N] [--skip-dashboard]

What one run measures, in this order (all on the same machine state, so the ratios are
the figures to read when the machine is busy):

floor
    The ingestion's own readers over every landed file once, in this process:
    `ingest.prepare` (encoding detection, the cp1251 -> UTF-8 transcoding pass, the
    openpyxl/1CClientBankExchange conversions) and `ingest._load_into_duckdb` (DuckDB's CSV
    reader with exactly the ingestion's options, rejects kept), then a row count. Files
    whose content repeats an earlier one (the generator's deliberate double deliveries) are
    read once, since ingestion skips them by checksum. A 1C statement is converted once per
    entity it feeds (documents, account sections), as ingestion does. This is the lower
    bound of ingestion: parse and scan, no typing, no quarantine, no Parquet writing.
full refresh
    `crmwh run` in a subprocess with a fresh landing (hard links to the generated files),
    data dir, Dagster instance and warehouse. Wall time is measured around the subprocess;
    the stages come from the Dagster run's step events: after the run, the instance under
    `<work>/state/dagster` is opened and `get_run_step_stats(run_id)` gives every step's
    start/end (the run id is read from the summary line `(run <id>)`). Steps are grouped:
    `raw__*` -> ingest, `quality__*` -> checks (raw and staging suites), `dbt_models` ->
    dbt, `warehouse__*` -> publish; `startup` is process start to the run's start (imports,
    loading the definitions, `dbt parse` when the manifest is stale), `summary` is the
    run's end to process exit, and `dagster_overhead` is the run time no step accounts for.
    The slowest dbt nodes come from dbt's `run_results.json` of that run.
increment
    One more export day written by `write_next_day` into the same landing (the next daily
    Bitrix snapshot, one day of Asterisk CDR, one small invoice file), then `crmwh run`
    again over the same data dir and instance.
peak memory
    A sampler thread walks /proc every 0.2 s during the full refresh, sums VmRSS over the
    `crmwh run` process and all its descendants (Dagster, dbt) and keeps the peak (RSS
    counts shared pages once per process, so the sum errs high). `resource.getrusage
    (RUSAGE_CHILDREN)` gives the largest single process as a cross-check.
checks cost
    The suites of `pipelines.lib.quality` (every raw table, latest load; every configured
    staging model, on the published warehouse) run here three ways: plain DuckDB SQL
    (`engine="sql"`), GX as the pipeline runs it (a new GX context per suite and its Data
    Docs pages written, as each Dagster check op does, then the index page once, as `crmwh
    run` does at its end) and GX engine only (one context reused, no Data Docs).
    `ratios.gx_over_sql` is the pipeline way; `ratios.gx_engine_over_sql` the other.
dashboard latency
    Superset started with `superset.prepare/start` on the published warehouse (state under
    `<out>/superset-state`, reused across runs), login through `/api/v1/security/login`,
    then every chart of every dashboard requested through `GET /api/v1/chart/<id>/data/
    ?force=true` (uncached: the query really runs on DuckDB) by 8 concurrent clients, each
    going through all charts `rounds` times (default 1) in its own shuffled order. One
    sequential pass first warms the server and is reported as `chart_ms.cold`; one more
    concurrent pass without `force` (Superset's data cache answering) as `chart_ms.cached`.

It writes `<out>/results.json` (and `<out>/results-<scale>.json`), `<out>/results.md` and
prints the table. The generated landing folder is kept under `<out>/landing/<scale>-seed<N>`
and reused by later runs (marker file `.bench-complete.json`); everything a run writes is
under `<out>/work/<scale>` (removed at the start of the next run of that scale).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.lib.settings import PROJECT_ROOT, load_settings
from pipelines.lib.superset.api import api_request

SCALES = ("small", "medium", "large")
MARKER = ".bench-complete.json"
GIB = 1 << 30

#: The benchmark's targets: (key in `ratios`/results, comparison, bound, what it means).
TARGETS = {
    "full_over_floor": ("<=", 2.0, "full refresh <= 2x the read floor (at large)"),
    "increment_over_full": ("<=", 0.03, "one-day increment <= 3 % of the full refresh"),
    "peak_rss_bytes": ("<=", 4 * GIB, "peak RSS of the run's process tree <= 4 GiB (at large)"),
    "chart_p95_ms": ("<=", 300.0, "chart-data p95 <= 300 ms with 8 clients"),
    "gx_over_sql": ("<=", 1.3, "GX checks <= 1.3x the same checks in plain SQL"),
}


# --------------------------------------------------------------------------- helpers


def _now() -> float:
    return time.perf_counter()


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[k - 1]


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


# --------------------------------------------------------------------------- landing


def ensure_landing(out: Path, scale: str, seed: int) -> tuple[Path, float | None, dict[str, int]]:
    """The generated landing folder of this scale and seed: reused when complete.

    Returns (folder, seconds spent generating or None when reused, rows per file).
    """
    landing = out / "landing" / f"{scale}-seed{seed}"
    marker = landing / MARKER
    if marker.exists():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if info.get("scale") == scale and info.get("seed") == seed:
            return landing, None, dict(info.get("counts") or {})
    from crmwh_tools.demo_data import generate

    landing.mkdir(parents=True, exist_ok=True)
    t0 = _now()
    counts = generate(landing, seed=seed, scale=scale)
    seconds = _now() - t0
    marker.write_text(
        json.dumps(
            {"scale": scale, "seed": seed, "seconds": round(seconds, 1), "counts": counts},
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    return landing, seconds, counts


def link_landing(src: Path, dst: Path) -> int:
    """A private landing for one run: hard links to the generated files (copies if the
    file system refuses), so the increment's extra files never touch the reused folder."""
    n = 0
    for path in sorted(src.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)
        n += 1
    return n


def _content_key(path: Path) -> str:
    """Cheap identity of a file's content (size + first and last MiB), for de-duplication."""
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with path.open("rb") as fh:
        h.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(-(1 << 20), os.SEEK_END)
            h.update(fh.read())
    return h.hexdigest()


# --------------------------------------------------------------------------- increment

_TS_RE = re.compile(r'"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})"')
_UID_RE = re.compile(r'"(\d{9,11})\.(\d+)"')


def _tail_lines(path: Path, nbytes: int, encoding: str) -> list[str]:
    """The complete lines in the last `nbytes` of a file (the first, partial one dropped)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        start = max(0, size - nbytes)
        fh.seek(start)
        data = fh.read()
    text = data.decode(encoding, errors="replace")
    lines = text.splitlines()
    if start > 0 and lines:
        lines = lines[1:]
    return [ln for ln in lines if ln.strip()]


def write_next_day(landing: Path) -> dict[str, int]:
    """Write one more export day into `landing`: rows per written file (relative path).

    - crm_bitrix/deals_<day>.csv: the newest daily snapshot exported again the next day
      (same deals, `Дней в стадии` + 1), same encoding and dialect;
    - telephony_asterisk/Master_<day>.csv: the last ~1/365 of Master.csv (about one day
      of CDR) with every timestamp and uniqueid/linkedid moved one day later;
    - accounting_1c/invoices_<day>.csv: the last ~1/300 of invoices.csv (about one day of
      invoices, at least a few) renumbered and dated that day.
    """
    written: dict[str, int] = {}
    snaps = sorted((landing / "crm_bitrix").glob("deals_????-??-??.csv"))
    if not snaps:
        raise FileNotFoundError(f"{landing}/crm_bitrix has no deals_YYYY-MM-DD.csv snapshot")
    last = snaps[-1]
    day = dt.date.fromisoformat(last.stem.removeprefix("deals_")) + dt.timedelta(days=1)

    # 1. Bitrix: the next daily snapshot
    enc = "utf-8-sig" if last.read_bytes()[:3] == b"\xef\xbb\xbf" else "cp1251"
    rel = f"crm_bitrix/deals_{day:%Y-%m-%d}.csv"
    n = 0
    with (
        last.open("r", encoding=enc, newline="") as fin,
        (landing / rel).open("w", encoding=enc, newline="") as fout,
    ):
        reader = csv.reader(fin, delimiter=";")
        writer = csv.writer(fout, delimiter=";", lineterminator="\r\n")
        header = next(reader)
        writer.writerow(header)
        idx = header.index("Дней в стадии") if "Дней в стадии" in header else None
        for row in reader:
            if idx is not None and idx < len(row) and row[idx].isdigit():
                row[idx] = str(int(row[idx]) + 1)
            writer.writerow(row)
            n += 1
    written[rel] = n

    # 2. Asterisk: one day of CDR
    master = landing / "telephony_asterisk" / "Master.csv"
    if master.exists():
        size = master.stat().st_size
        lines = _tail_lines(master, min(max(size // 365, 64 << 10), 256 << 20), "utf-8")

        def shift_ts(m: re.Match[str]) -> str:
            t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S") + dt.timedelta(days=1)
            return f'"{t:%Y-%m-%d %H:%M:%S}"'

        def shift_uid(m: re.Match[str]) -> str:
            return f'"{int(m.group(1)) + 86_400}.{m.group(2)}"'

        rel = f"telephony_asterisk/Master_{day:%Y-%m-%d}.csv"
        with (landing / rel).open("w", encoding="utf-8", newline="") as fh:
            for line in lines:
                fh.write(_UID_RE.sub(shift_uid, _TS_RE.sub(shift_ts, line)) + "\n")
        written[rel] = len(lines)

    # 3. 1C: one small invoice register
    invoices = landing / "accounting_1c" / "invoices.csv"
    if invoices.exists():
        from crmwh_tools.demo_data.accounting import INVOICES

        size = invoices.stat().st_size
        lines = _tail_lines(invoices, max(size // 300, 4 << 10), "cp1251")
        rows = [r for r in csv.reader(lines, delimiter=";") if len(r) == len(INVOICES)]
        rel = f"accounting_1c/invoices_{day:%Y-%m-%d}.csv"
        with (landing / rel).open("w", encoding="cp1251", newline="") as fh:
            writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
            writer.writerow(INVOICES)
            for i, row in enumerate(rows, start=1):
                row[0] = str(90_000_000 + i)
                row[1] = f"{day:%d.%m.%Y}"
                row[7] = f"{day + dt.timedelta(days=10):%d.%m.%Y}"
                writer.writerow(row)
        written[rel] = len(rows)
    return written


# --------------------------------------------------------------------------- floor


def measure_floor(
    landing: Path, workdir: Path, sources_dir: Path | None = None, config_dir: Path | None = None
) -> dict[str, Any]:
    """The ingestion's readers over every landed file once (see the module docstring)."""
    from pipelines.lib.ingest import _load_into_duckdb, landed_files, prepare
    from pipelines.lib.mappings import load_entities

    entities = load_entities(sources_dir or load_settings().sources_dir, config_dir)
    seen: dict[tuple[str, str], str] = {}
    per_entity: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    skipped: list[str] = []
    workdir.mkdir(parents=True, exist_ok=True)
    # One connection for all files (opening one costs ~0.1-0.3 s here, and the floor is
    # the reading, not the connection set-up); same settings as `ingest_file`.
    con = duckdb.connect()
    con.execute("set preserve_insertion_order = true; set threads = 2")
    cpu0 = _cpu_self()
    t_all = _now()
    for ent in entities:
        stats = per_entity.setdefault(
            ent.table, {"files": 0, "bytes": 0, "rows": 0, "prepare_s": 0.0, "read_s": 0.0}
        )
        for path in landed_files(landing, ent):
            key = (ent.table, _content_key(path))
            if key in seen:
                skipped.append(f"{path.relative_to(landing)} (same content as {seen[key]})")
                continue
            seen[key] = str(path.relative_to(landing))
            tmp = Path(tempfile.mkdtemp(prefix="floor-", dir=workdir))
            try:
                t0 = _now()
                prep = prepare(path, ent, tmp)
                t1 = _now()
                _load_into_duckdb(con, prep, ent, path)
                (rows,) = con.execute(
                    "select (select count(*) from src) + (select count(*) from rej)"
                ).fetchone()
                t2 = _now()
            except Exception as exc:  # a file the ingestion cannot read either
                errors.append(f"{path.relative_to(landing)}: {str(exc).splitlines()[0][:160]}")
                continue
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            stats["files"] += 1
            stats["bytes"] += path.stat().st_size
            stats["rows"] += int(rows) + len(prep.preset_quarantine)
            stats["prepare_s"] += t1 - t0
            stats["read_s"] += t2 - t1
    con.execute("drop table if exists src; drop table if exists rej")
    con.close()
    wall = _now() - t_all
    per_entity = {k: v for k, v in per_entity.items() if v["files"]}
    for v in per_entity.values():
        v["prepare_s"], v["read_s"] = round(v["prepare_s"], 3), round(v["read_s"], 3)
    prepare_s = sum(v["prepare_s"] for v in per_entity.values())
    read_s = sum(v["read_s"] for v in per_entity.values())
    return {
        "seconds": prepare_s + read_s,  # the floor: readers only, no bookkeeping
        "wall_seconds": wall,
        "cpu_seconds": _cpu_self() - cpu0,
        "prepare_seconds": prepare_s,
        "read_seconds": read_s,
        "files": sum(v["files"] for v in per_entity.values()),
        "bytes": sum(v["bytes"] for v in per_entity.values()),
        "rows": sum(v["rows"] for v in per_entity.values()),
        "per_entity": per_entity,
        "skipped_duplicates": skipped,
        "errors": errors,
    }


# --------------------------------------------------------------------------- memory


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, command name) for every process visible in /proc."""
    out: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read().decode("utf-8", "replace")
        except OSError:
            continue
        lpar, rpar = stat.find("("), stat.rfind(")")
        fields = stat[rpar + 2 :].split()
        if len(fields) > 1:
            out[int(entry.name)] = (int(fields[1]), stat[lpar + 1 : rpar])
    return out


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in _proc_table().items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _cmd_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return "?"
    if not argv:
        return "?"
    names = [Path(a).name for a in argv[:4]]
    if names[0].startswith("python") and len(argv) > 1:
        return " ".join(names[1:3])
    return " ".join(names[:2])


class TreeSampler:
    """Samples the summed RSS of a process tree in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.peak_single = 0
        self.peak_breakdown: list[tuple[str, int]] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            sizes = [(pid, rss_bytes(pid)) for pid in tree_pids(self.pid)]
            total = sum(s for _, s in sizes)
            self.samples += 1
            self.peak_single = max([self.peak_single] + [s for _, s in sizes])
            if total > self.peak:
                self.peak = total
                top = sorted(sizes, key=lambda x: -x[1])[:5]
                self.peak_breakdown = [(_cmd_name(p), s) for p, s in top if s]
            self._stop.wait(self.interval)


# --------------------------------------------------------------------------- pipeline runs


@dataclass
class Paths:
    work: Path
    landing: Path
    data: Path
    state: Path
    warehouse: Path
    code: Path = PROJECT_ROOT  # the project the runs execute (a snapshot, see snapshot_code)
    config: Path | None = None  # the user configuration folder the runs read, if any

    @classmethod
    def under(cls, work: Path, code: Path = PROJECT_ROOT) -> Paths:
        return cls(work, work / "landing", work / "data", work / "state",
                   work / "warehouse.duckdb", code)  # fmt: skip

    @property
    def sources_dir(self) -> Path:
        return self.code / "sources"

    @property
    def dbt_project_dir(self) -> Path:
        return self.code / "dbt_project"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.code)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        env.update(
            CRMWH_PATHS__LANDING=str(self.landing),
            CRMWH_PATHS__DATA=str(self.data),
            CRMWH_PATHS__STATE=str(self.state),
            CRMWH_PATHS__WAREHOUSE=str(self.warehouse),
            CRMWH_PATHS__CONFIG=str(self.config or ""),
            PYTHONUNBUFFERED="1",
        )
        return env


@dataclass
class RunResult:
    label: str
    exit_code: int
    wall: float
    cpu: float
    run_id: str | None
    log: Path
    started_epoch: float
    ended_epoch: float
    peak_rss: int = 0
    peak_single: int = 0
    peak_breakdown: list[tuple[str, int]] = field(default_factory=list)
    children_maxrss: int = 0  # getrusage(RUSAGE_CHILDREN): largest process waited for so far
    stages: dict[str, float] = field(default_factory=dict)
    steps: list[tuple[str, float]] = field(default_factory=list)
    dbt_nodes: list[tuple[str, float]] = field(default_factory=list)
    dbt_by_kind: dict[str, Any] = field(default_factory=dict)


def run_crmwh(paths: Paths, label: str, sample_memory: bool = True) -> RunResult:
    """`crmwh run` in a subprocess; wall and CPU time, peak tree RSS, Dagster stages."""
    log = paths.work / f"{label}.log"
    cmd = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "run",
        "--landing",
        str(paths.landing),
        "--warehouse",
        str(paths.warehouse),
        "--data",
        str(paths.data),
    ]
    cpu0 = _cpu_children()
    with log.open("wb") as fh:
        e0, t0 = time.time(), _now()
        proc = subprocess.Popen(
            cmd, cwd=paths.code, env=paths.env(), stdout=fh, stderr=subprocess.STDOUT
        )
        sampler = TreeSampler(proc.pid) if sample_memory else None
        if sampler:
            sampler.__enter__()
        try:
            code = proc.wait()
        finally:
            if sampler:
                sampler.__exit__()
        wall, e1 = _now() - t0, time.time()
    text = log.read_text(encoding="utf-8", errors="replace")
    m = re.findall(r"\(run ([0-9a-f-]{36})\)", text)
    res = RunResult(label, code, wall, _cpu_children() - cpu0, m[-1] if m else None, log, e0, e1)
    res.children_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if sampler:
        res.peak_rss, res.peak_single = sampler.peak, sampler.peak_single
        res.peak_breakdown = sampler.peak_breakdown
    if res.run_id:
        _dagster_stages(paths, res)
        res.dbt_nodes, res.dbt_by_kind = _dbt_nodes(paths.dbt_project_dir, res.run_id)
    return res


def stage_of(step_key: str) -> str:
    if step_key.startswith("raw__"):
        return "ingest"
    if step_key.startswith("quality__"):
        return "checks"
    if step_key.startswith("dbt"):
        return "dbt"
    if step_key.startswith("warehouse__"):
        return "publish"
    return "other_steps"


def _dagster_stages(paths: Paths, res: RunResult) -> None:
    """Per-stage seconds from the run's step events in the Dagster instance."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(paths.state / "dagster")) as instance:
        stats = instance.get_run_stats(res.run_id)
        steps = instance.get_run_step_stats(res.run_id)
    stages = {
        "ingest": 0.0,
        "checks": 0.0,
        "checks_raw": 0.0,
        "checks_staging": 0.0,
        "dbt": 0.0,
        "publish": 0.0,
    }
    total = 0.0
    for s in steps:
        if s.start_time is None or s.end_time is None:
            continue
        d = s.end_time - s.start_time
        total += d
        st = stage_of(s.step_key)
        stages[st] = stages.get(st, 0.0) + d
        if st == "checks":
            sub = "checks_staging" if s.step_key.startswith("quality__staging") else "checks_raw"
            stages[sub] += d
        res.steps.append((s.step_key, d))
    if stats.start_time and stats.end_time:
        run_s = stats.end_time - stats.start_time
        stages["dagster_run"] = run_s
        stages["dagster_overhead"] = max(0.0, run_s - total)
        stages["startup"] = max(0.0, stats.start_time - res.started_epoch)
        stages["summary"] = max(0.0, res.ended_epoch - stats.end_time)
    res.stages = stages
    res.steps.sort(key=lambda x: -x[1])


def _dbt_nodes(dbt_project_dir: Path, run_id: str) -> tuple[list[tuple[str, float]], dict]:
    """Nodes of the run's dbt build, slowest first, and totals per resource type (model,
    data test, unit test, seed: count and summed execution seconds, over all threads)."""
    target = dbt_project_dir / "target"
    nodes: list[tuple[str, float]] = []
    kinds: dict[str, Any] = {}
    for path in sorted(target.glob(f"dbt_models-{run_id[:7]}*/run_results.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        kinds["elapsed_seconds"] = _r(doc.get("elapsed_time"))
        for r in doc.get("results", []):
            uid, took = str(r.get("unique_id")), float(r.get("execution_time") or 0.0)
            nodes.append((uid, took))
            k = kinds.setdefault(uid.split(".")[0], {"count": 0, "seconds": 0.0})
            k["count"] += 1
            k["seconds"] = round(k["seconds"] + took, 3)
    return sorted(nodes, key=lambda x: -x[1]), kinds


_SNAPSHOT_SKIP = {
    ".git",
    ".venv",
    ".venv-superset",
    "data",
    "state",
    "bench",
    "logs",
    "landing",
    "target",
    "dbt_packages",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
}


def snapshot_code(dest: Path, root: Path = PROJECT_ROOT) -> Path:
    """Copy the project's code and configuration (no data, no venvs, no dbt target) to
    `dest`, so that both runs of one benchmark execute the same code even while the
    working tree is being edited (a dbt model added mid-run fails the run otherwise)."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in _SNAPSHOT_SKIP or n.startswith("warehouse.duckdb")}

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(root, dest, ignore=ignore, symlinks=True)
    return dest


def parse_dbt(paths: Paths) -> float:
    """`dbt parse` of the snapshot before the timed runs (a deployed project has its
    manifest already; the first `crmwh run` of a fresh checkout would pay it once)."""
    code = (
        "from pipelines.lib.settings import load_settings; "
        "from pipelines.lib.dbt import ensure_manifest; ensure_manifest(load_settings())"
    )
    t0 = _now()
    done = subprocess.run([sys.executable, "-c", code], cwd=paths.code, env=paths.env(),
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"dbt parse of the snapshot failed:\n{done.stdout[-2000:]}"
                           f"\n{done.stderr[-2000:]}")  # fmt: skip
    return _now() - t0


# --------------------------------------------------------------------------- checks


def measure_checks(paths: Paths, repeat: int = 1) -> dict[str, Any]:
    """Raw + staging suites: plain SQL vs GX as the pipeline runs it vs GX engine only."""
    try:
        from pipelines.lib.config_folder import user_tables
        from pipelines.lib.mappings import load_entities
        from pipelines.lib.quality import run_suite
        from pipelines.lib.quality.duck import raw_connection, warehouse_connection
        from pipelines.lib.quality.rules import (
            RAW,
            default_config_path,
            load_config,
            pipeline_stages,
            raw_suites,
            staging_suites,
        )
    except ImportError as exc:
        return {"note": f"pipelines.lib.quality is not available ({exc}); not measured"}
    entities = load_entities(paths.sources_dir, paths.config)
    config = load_config(default_config_path(paths.code))
    seeds = paths.dbt_project_dir / "seeds"
    stages = pipeline_stages(user_tables(paths.config, seeds).get("pipeline_stages", seeds))
    suites = raw_suites(entities, config, stages) + staging_suites(config)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    docs = paths.work / "bench_data_docs"

    t0 = _now()
    from pipelines.lib.quality.gx import GxChecks, build_docs_index

    import_s = _now() - t0

    def connect(suite: Any) -> duckdb.DuckDBPyConnection:
        if suite.layer == RAW:
            return raw_connection(paths.data, entities)
        return warehouse_connection(paths.warehouse)

    def each_suite(
        check: Callable[[duckdb.DuckDBPyConnection, Any], list],
    ) -> tuple[float, dict[str, bool]]:
        """`check` over every suite on a connection of its own: seconds, outcomes."""
        took, outcome = 0.0, {}
        for suite in suites:
            con = connect(suite)
            try:
                t = _now()
                outs = check(con, suite)
                took += _now() - t
            except LookupError:
                continue
            finally:
                con.close()
            outcome.update({f"{suite.name}:{o.rule.name}": o.passed for o in outs})
        return took, outcome

    def sql_pass() -> tuple[float, dict[str, bool]]:
        return each_suite(lambda con, suite: run_suite(con, suite, engine="sql", now=now)[1])

    def gx_as_the_pipeline(con: duckdb.DuckDBPyConnection, suite: Any) -> list:
        checker = GxChecks(con, docs_dir=docs, run_name="bench", build_index=False)
        try:
            return run_suite(con, suite, checker=checker, now=now)[1]
        finally:
            checker.close()

    def gx_pipeline_pass() -> tuple[float, dict[str, bool]]:
        took, outcome = each_suite(gx_as_the_pipeline)
        t = _now()
        build_docs_index(docs)  # once per run, as `crmwh run` does
        return took + _now() - t, outcome

    def gx_engine_pass() -> tuple[float, dict[str, bool]]:
        took, outcome = 0.0, {}
        raw = raw_connection(paths.data, entities)
        wh = warehouse_connection(paths.warehouse)
        checkers = {"raw": GxChecks(raw), "staging": GxChecks(wh)}
        try:
            for suite in suites:
                key = "raw" if suite.layer == RAW else "staging"
                con = raw if key == "raw" else wh
                try:
                    t = _now()
                    _, outs = run_suite(con, suite, checker=checkers[key], now=now)
                    took += _now() - t
                except LookupError:
                    continue
                outcome.update({f"{suite.name}:{o.rule.name}": o.passed for o in outs})
        finally:
            for c in checkers.values():
                c.close()
            raw.close()
            wh.close()
        return took, outcome

    sql_pass()  # warm the page cache and DuckDB for all three
    times: dict[str, list[float]] = {"sql": [], "gx_pipeline": [], "gx_engine": []}
    outcomes: dict[str, dict[str, bool]] = {}
    for _ in range(max(1, repeat)):
        for name, fn in (
            ("sql", sql_pass),
            ("gx_pipeline", gx_pipeline_pass),
            ("gx_engine", gx_engine_pass),
        ):
            took, outcomes[name] = fn()
            times[name].append(took)
    med = {k: statistics.median(v) for k, v in times.items()}
    disagree = sorted(k for k, v in outcomes["sql"].items() if outcomes["gx_engine"].get(k) != v)
    return {
        "suites": len(suites),
        "rules": len(outcomes["sql"]),
        "repeat": max(1, repeat),
        "sql_seconds": med["sql"],
        "gx_seconds": med["gx_pipeline"],
        "gx_engine_seconds": med["gx_engine"],
        "gx_import_seconds": import_s,
        "runs": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "outcomes_disagree": disagree[:20],
    }


# --------------------------------------------------------------------------- dashboards


class _Api:
    def __init__(self, base: str) -> None:
        self.base, self.token = base, ""

    def call(
        self, method: str, path: str, body: Any = None, timeout: float = 120
    ) -> tuple[int, Any]:
        req = api_request(self.base + path, method, body, self.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode("utf-8", "replace")[:300]


def free_port(ports: range | None = None) -> int:
    """A free TCP port on 127.0.0.1: the first free one of `ports` (env `CRMWH_BENCH_PORTS`
    as `FIRST-LAST`, for machines where servers must stay in a given range), else any.
    The test suite's servers take their ports here too."""
    import socket

    if ports is None and os.environ.get("CRMWH_BENCH_PORTS"):
        first, _, last = os.environ["CRMWH_BENCH_PORTS"].partition("-")
        ports = range(int(first), int(last or first) + 1)
    for port in ports or [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError(f"no free port in {ports}")


def chart_sql(api: _Api, chart_id: int) -> list[str]:
    """The SQL Superset runs for a chart's saved query (``type=query``: nothing is run)."""
    status, body = api.call("GET", f"/api/v1/chart/{chart_id}/data/?type=query")
    if status != 200 or not isinstance(body, dict):
        return []
    return [r["query"] for r in body.get("result") or [] if r.get("query")]


def scan_profile(warehouse: Path, sqls: list[str]) -> dict[str, Any]:
    """What a chart's queries read in DuckDB's profile, run once more over the served
    warehouse (read-only): rows and row groups scanned, of the row groups the scanned
    tables hold, and DuckDB's own time without Superset."""
    out: dict[str, Any] = {"queries": len(sqls), "rows_scanned": 0, "row_groups_scanned": 0,
                           "row_groups_to_scan": 0, "duckdb_ms": 0.0}  # fmt: skip
    if not sqls:
        return {**out, "error": "no SQL from Superset"}
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile.json"
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            con.execute(f"set enable_profiling = 'json'; set profiling_output = '{profile}'")
            for sql in sqls:
                try:
                    con.execute(sql).fetchall()
                except duckdb.Error as exc:
                    return {**out, "error": str(exc).splitlines()[0][:200]}
                query = json.loads(profile.read_text()).get("query") or {}
                out["rows_scanned"] += int(query.get("total_rows_scanned") or 0)
                out["row_groups_scanned"] += int(query.get("total_row_groups_scanned") or 0)
                out["row_groups_to_scan"] += int(query.get("total_row_groups_to_scan") or 0)
                out["duckdb_ms"] += float(query.get("total_time") or 0) * 1000
        finally:
            con.close()
    out["duckdb_ms"] = round(out["duckdb_ms"], 1)
    return out


def measure_dashboards(
    warehouse: Path, state_dir: Path, clients: int = 8, rounds: int = 1, seed: int = 0
) -> dict[str, Any]:
    """p50/p95 of uncached chart-data requests through Superset's API (module docstring)."""
    from pipelines.lib import superset

    t0 = _now()
    creds = superset.prepare(warehouse, state_dir)
    port = free_port()
    proc = superset.start(warehouse, state_dir, port=port)
    startup_s = _now() - t0
    try:
        api = _Api(f"http://127.0.0.1:{port}")
        status, body = api.call(
            "POST",
            "/api/v1/security/login",
            {
                "username": creds.username,
                "password": creds.password,
                "provider": "db",
                "refresh": False,
            },
        )
        if status != 200:
            raise RuntimeError(f"login failed: {status} {body}")
        api.token = body["access_token"]
        status, body = api.call(
            "GET", "/api/v1/dashboard/?q=" + urllib.parse.quote("(page_size:100)")
        )
        if status != 200:
            raise RuntimeError(f"dashboard list failed: {status} {body}")
        dashboards = [(d["id"], d["dashboard_title"]) for d in body["result"]]
        charts: dict[int, str] = {}
        for did, _ in dashboards:
            status, body = api.call("GET", f"/api/v1/dashboard/{did}/charts")
            if status == 200:
                charts.update({c["id"]: c["slice_name"] for c in body["result"]})

        def fetch(chart_id: int, force: bool = True) -> tuple[int, float]:
            t = _now()
            query = "?force=true" if force else ""
            status, _ = api.call("GET", f"/api/v1/chart/{chart_id}/data/{query}")
            return status, (_now() - t) * 1000

        cold: dict[str, float] = {}
        for cid, name in charts.items():  # one sequential pass: warms the server
            _, ms = fetch(cid)
            cold[name] = round(ms, 1)
        scanned = {
            name: scan_profile(warehouse, chart_sql(api, cid)) for cid, name in charts.items()
        }

        def load(force: bool, n_rounds: int) -> dict[str, Any]:
            """`clients` threads, each through every chart `n_rounds` times, shuffled."""
            lat: list[float] = []
            per_chart: dict[str, list[float]] = {name: [] for name in charts.values()}
            errors: list[str] = []
            lock = threading.Lock()

            def client(k: int) -> None:
                rng = random.Random(seed * 1000 + k)
                for _ in range(n_rounds):
                    order = list(charts)
                    rng.shuffle(order)
                    for cid in order:
                        status, ms = fetch(cid, force)
                        with lock:
                            if status == 200:
                                lat.append(ms)
                                per_chart[charts[cid]].append(ms)
                            else:
                                errors.append(f"{charts[cid]}: HTTP {status}")

            t1 = _now()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                list(pool.map(client, range(clients)))
            took = _now() - t1
            return {
                "p50": _r(percentile(lat, 50), 1),
                "p95": _r(percentile(lat, 95), 1),
                "max": _r(max(lat) if lat else None, 1),
                "requests": len(lat),
                "errors": len(errors),
                "error_examples": sorted(set(errors))[:5],
                "requests_per_second": _r(len(lat) / took if took else None, 2),
                "per_chart_p95": {k: _r(percentile(v, 95), 1) for k, v in per_chart.items()},
            }

        uncached = load(force=True, n_rounds=rounds)
        cached = load(force=False, n_rounds=1)  # Superset's 5-minute data cache answers
    finally:
        superset.stop(proc)
    return {
        **uncached,
        "clients": clients,
        "rounds": rounds,
        "dashboards": [t for _, t in dashboards],
        "charts": len(charts),
        "server": "gunicorn, 1 worker x 4 threads (superset.start defaults)",
        "cold": cold,
        "scanned": scanned,
        "cached": {k: v for k, v in cached.items() if k != "per_chart_p95"},
        "superset_start_seconds": _r(startup_s, 1),
    }


def measure_dashboards_of(
    code: Path, warehouse: Path, state_dir: Path, **kw: int
) -> dict[str, Any]:
    """`measure_dashboards` run by the snapshot `code` in a child process, so that Superset
    serves the snapshot's dashboards (the ones the warehouse was built for), not the
    working tree's, which may have changed since the benchmark began."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "chart.json"
        script = (
            "import json, sys; from pathlib import Path; "
            "from crmwh_tools.bench import measure_dashboards; "
            "a = json.loads(sys.argv[1]); "
            "r = measure_dashboards(Path(a['warehouse']), Path(a['state']), **a['kw']); "
            "Path(a['out']).write_text(json.dumps(r))"
        )
        args = {"warehouse": str(warehouse), "state": str(state_dir), "kw": kw, "out": str(result)}
        done = subprocess.run([sys.executable, "-c", script, json.dumps(args)], cwd=code,
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0 or not result.exists():
            raise RuntimeError(f"dashboards: {done.stderr.strip()[-2000:]}")
        return json.loads(result.read_text())


# --------------------------------------------------------------------------- report


def _fmt_s(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f} s"


def _fmt_x(x: float | None) -> str:
    return "—" if x is None else (f"{x:.3f}" if x < 0.1 else f"{x:.2f}×")


def _fmt_b(x: float | None) -> str:
    return "—" if not x else f"{x / GIB:.2f} GiB"


def _fmt_ms(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f} ms"


def evaluate_targets(results: dict[str, Any]) -> dict[str, Any]:
    measured = {
        "full_over_floor": results["ratios"].get("full_over_floor"),
        "increment_over_full": results["ratios"].get("increment_over_full"),
        "peak_rss_bytes": results.get("peak_rss_bytes"),
        "chart_p95_ms": (results.get("chart_ms") or {}).get("p95"),
        "gx_over_sql": results["ratios"].get("gx_over_sql"),
    }
    out = {}
    for key, (_, bound, what) in TARGETS.items():
        value = measured[key]
        out[key] = {
            "target": bound,
            "measured": value,
            "met": None if value is None else value <= bound,
            "what": what,
        }
    return out


def markdown(results: dict[str, Any]) -> str:
    s, r, t = results["seconds"], results["ratios"], results["targets"]
    ch = results.get("chart_ms") or {}
    cached = ch.get("cached") or {}
    by_kind = (results.get("full_refresh") or {}).get("dbt_by_kind") or {}

    def kind(name: str) -> float | None:
        return (by_kind.get(name) or {}).get("seconds")

    m = results["machine"]

    def met(key: str) -> str:
        v = t[key]["met"]
        return "—" if v is None else ("met" if v else "**missed**")

    lines = [
        f"# crmwh bench — scale `{results['scale']}` (seed {results['seed']})",
        "",
        f"{results['measured_at']} · {m['cpus']} CPUs · {m['memory_gib']} GiB · "
        f"load average {m['loadavg_start']} → {m['loadavg_end']} · DuckDB {m['duckdb']}",
        f"input: {results['input']['files']} files, {results['input']['bytes'] / 1e6:,.1f} MB, "
        f"{results['input']['rows']:,} rows",
        "",
        "Timings are wall-clock on a shared machine (other jobs were using the CPU); read the "
        "ratios, measured in the same run, rather than absolute seconds.",
        "",
        "| measure | value | target | |",
        "|---|---:|---:|---|",
        f"| floor (ingestion readers, every file once) | {_fmt_s(s.get('floor'))} | | |",
        f"| · of which prepare (transcode / XLSX / 1C) | {_fmt_s(s.get('floor_prepare'))} | | |",
        f"| full refresh `crmwh run` (wall) | {_fmt_s(s.get('full_refresh'))} | | |",
        f"| · startup (imports, definitions) | {_fmt_s(s.get('startup'))} | | |",
        f"| · ingest | {_fmt_s(s.get('ingest'))} | | |",
        f"| · checks (raw + staging) | {_fmt_s(s.get('checks'))} | | |",
        f"| · dbt build | {_fmt_s(s.get('dbt'))} | | |",
        f"| · · dbt models / data tests / unit tests (summed over threads) | "
        f"{_fmt_s(kind('model'))} / {_fmt_s(kind('test'))} / {_fmt_s(kind('unit_test'))} | | |",
        f"| · publish | {_fmt_s(s.get('publish'))} | | |",
        f"| · Dagster overhead + summary | {_fmt_s((s.get('dagster_overhead') or 0) + (s.get('summary') or 0))} | | |",
        f"| **full / floor** | {_fmt_x(r.get('full_over_floor'))} | ≤ 2× | {met('full_over_floor')} |",
        f"| ingest / floor | {_fmt_x(r.get('ingest_over_floor'))} | | |",
        f"| increment (one more day, wall) | {_fmt_s(s.get('increment'))} | | |",
        f"| **increment / full** | {_fmt_x(r.get('increment_over_full'))} | ≤ 0.03 | {met('increment_over_full')} |",
        f"| **peak RSS, process tree** | {_fmt_b(results.get('peak_rss_bytes'))} | ≤ 4 GiB | {met('peak_rss_bytes')} |",
        f"| chart data p50 (8 clients, uncached) | {_fmt_ms(ch.get('p50'))} | | |",
        f"| **chart data p95** | {_fmt_ms(ch.get('p95'))} | ≤ 300 ms | {met('chart_p95_ms')} |",
        f"| chart data p50 / p95, Superset cache hits | {_fmt_ms(cached.get('p50'))} / "
        f"{_fmt_ms(cached.get('p95'))} | | |",
        f"| chart requests ok / failed | {ch.get('requests', '—')} / {ch.get('errors', '—')} | | |",
        f"| checks in plain SQL | {_fmt_s(s.get('checks_sql'))} | | |",
        f"| checks with GX (as the pipeline runs them) | {_fmt_s(s.get('checks_gx'))} | | |",
        f"| **GX / SQL** | {_fmt_x(r.get('gx_over_sql'))} | ≤ 1.3× | {met('gx_over_sql')} |",
        f"| GX engine only (one context) / SQL | {_fmt_x(r.get('gx_engine_over_sql'))} | | |",
        f"| CPU full / floor (less noisy) | {_fmt_x(r.get('full_over_floor_cpu'))} | | |",
    ]
    lines += _chart_table(ch)
    if results.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def _chart_table(ch: dict[str, Any]) -> list[str]:
    """Per chart, slowest p95 first: its times through Superset and what its SQL scanned."""
    p95 = ch.get("per_chart_p95") or {}
    if not p95:
        return []
    cold, scanned = ch.get("cold") or {}, ch.get("scanned") or {}
    out = [
        "",
        f"Per chart ({len(p95)}), slowest first: p95 under {ch.get('clients', '?')} clients, "
        "the first sequential request (cold), and what its SQL read in DuckDB alone (rows "
        "scanned; row groups read of those its tables hold).",
        "",
        "| chart | p95 | cold | rows scanned | row groups | DuckDB alone |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in sorted(p95, key=lambda k: -(p95[k] or 0)):
        sc = scanned.get(name) or {}
        rows = "—" if "rows_scanned" not in sc else f"{sc['rows_scanned']:,}"
        groups = (
            "—" if "row_groups_to_scan" not in sc
            else f"{sc['row_groups_scanned']:,} / {sc['row_groups_to_scan']:,}"
        )  # fmt: skip
        alone = sc.get("error") or _fmt_ms(sc.get("duckdb_ms"))
        out.append(
            f"| {name} | {_fmt_ms(p95[name])} | {_fmt_ms(cold.get(name))} | {rows} | {groups} "
            f"| {alone} |"
        )
    return out


# --------------------------------------------------------------------------- driver


def run_bench(
    scale: str,
    out: Path,
    seed: int = 42,
    skip_dashboard: bool = False,
    clients: int = 8,
    chart_rounds: int = 1,
    check_repeat: int = 1,
    log: Callable[[str], None] = print,
    config: Path | None = None,
) -> dict[str, Any]:
    """Run the whole benchmark at `scale`; write and return the results (module docstring)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    load_start = _loadavg()
    t_bench = _now()

    log(f"[bench] landing for {scale}, seed {seed} ...")
    landing, gen_s, counts = ensure_landing(out, scale, seed)
    how = "reused" if gen_s is None else f"generated in {gen_s:.1f}s"
    log(f"[bench]   {how}: {landing}")

    work = out / "work" / scale
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    paths = Paths.under(work, snapshot_code(work / "code"))
    paths.config = config.resolve() if config is not None else None
    link_landing(landing, paths.landing)
    log(f"[bench] code snapshot in {paths.code}; dbt parse ...")
    parse_s = parse_dbt(paths)

    log("[bench] floor: the ingestion's readers over every file once ...")
    floor = measure_floor(paths.landing, paths.work / "floor-tmp", paths.sources_dir, paths.config)
    notes += [f"floor: could not read {e}" for e in floor["errors"]]
    log(f"[bench]   {floor['seconds']:.1f}s for {floor['files']} files, {floor['rows']:,} rows")

    def partial(**phases: Any) -> None:
        """What is measured so far, in case the run is stopped before the end."""
        doc = {
            "scale": scale,
            "seed": seed,
            "complete": False,
            "floor_seconds": _r(floor["seconds"]),
        }
        for name, res in phases.items():
            doc[name] = {"exit_code": res.exit_code, "wall_seconds": _r(res.wall),
                         "peak_rss_bytes": res.peak_rss or None,
                         "stages": {k: _r(v) for k, v in res.stages.items()}}  # fmt: skip
        (out / f"partial-{scale}.json").write_text(json.dumps(doc, indent=2) + "\n", "utf-8")

    log("[bench] full refresh: crmwh run ...")
    full = run_crmwh(paths, "full_refresh")
    partial(full_refresh=full)
    log(
        f"[bench]   exit {full.exit_code} in {full.wall:.1f}s; peak RSS {full.peak_rss / GIB:.2f} GiB"
    )
    if full.exit_code not in (0, 2):
        notes.append(f"full refresh exited {full.exit_code}: see {full.log}")

    log("[bench] increment: one more day of files, crmwh run ...")
    added = write_next_day(paths.landing)
    inc = run_crmwh(paths, "increment")
    partial(full_refresh=full, increment=inc)
    log(f"[bench]   exit {inc.exit_code} in {inc.wall:.1f}s ({sum(added.values()):,} new rows)")
    if inc.exit_code not in (0, 2):
        notes.append(f"increment exited {inc.exit_code}: see {inc.log}")

    checks: dict[str, Any] = {}
    if paths.warehouse.exists():
        log("[bench] checks: plain SQL vs Great Expectations ...")
        try:
            checks = measure_checks(paths, repeat=check_repeat)
        except Exception as exc:  # report, never lose the other figures
            checks = {"note": f"checks benchmark failed: {type(exc).__name__}: {exc}"}
        if checks.get("note"):
            notes.append(checks["note"])
        else:
            log(
                f"[bench]   SQL {checks['sql_seconds']:.1f}s, GX {checks['gx_seconds']:.1f}s "
                f"(engine only {checks['gx_engine_seconds']:.1f}s)"
            )
    else:
        notes.append("no published warehouse: checks and dashboards not measured")

    chart: dict[str, Any] | None = None
    if skip_dashboard:
        notes.append("dashboard latency skipped (--skip-dashboard)")
    elif paths.warehouse.exists():
        log(f"[bench] dashboards: Superset, {clients} concurrent clients ...")
        try:
            chart = measure_dashboards_of(
                paths.code,
                paths.warehouse,
                out / "superset-state",
                clients=clients,
                rounds=chart_rounds,
                seed=seed,
            )
            log(
                f"[bench]   p50 {chart['p50']} ms, p95 {chart['p95']} ms over "
                f"{chart['requests']} requests ({chart['errors']} errors)"
            )
            if chart["errors"]:
                notes.append(f"{chart['errors']} chart requests failed: {chart['error_examples']}")
        except Exception as exc:
            notes.append(f"dashboard latency not measured: {type(exc).__name__}: {exc}"[:400])

    fs = full.stages
    seconds = {
        "generate": _r(gen_s),
        "dbt_parse": _r(parse_s),
        "floor": _r(floor["seconds"]),
        "floor_wall": _r(floor["wall_seconds"]),
        "floor_prepare": _r(floor["prepare_seconds"]),
        "floor_read": _r(floor["read_seconds"]),
        "full_refresh": _r(full.wall),
        **{k: _r(v) for k, v in fs.items()},
        "increment": _r(inc.wall),
        **{f"increment_{k}": _r(v) for k, v in inc.stages.items()},
        "checks_sql": _r(checks.get("sql_seconds")),
        "checks_gx": _r(checks.get("gx_seconds")),
        "checks_gx_engine": _r(checks.get("gx_engine_seconds")),
        "gx_import": _r(checks.get("gx_import_seconds")),
    }
    for k in ("ingest", "checks", "dbt", "publish"):  # the stages are always present
        seconds.setdefault(k, None)
    ratios = {
        "full_over_floor": _r(_div(full.wall, floor["seconds"])),
        "full_over_floor_cpu": _r(_div(full.cpu, floor["cpu_seconds"])),
        "ingest_over_floor": _r(_div(fs.get("ingest"), floor["seconds"])),
        "increment_over_full": _r(_div(inc.wall, full.wall), 4),
        "increment_over_full_cpu": _r(_div(inc.cpu, full.cpu), 4),
        "gx_over_sql": _r(_div(checks.get("gx_seconds"), checks.get("sql_seconds"))),
        "gx_engine_over_sql": _r(_div(checks.get("gx_engine_seconds"), checks.get("sql_seconds"))),
    }
    results: dict[str, Any] = {
        "scale": scale,
        "seed": seed,
        "measured_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
            "loadavg_start": load_start,
            "loadavg_end": _loadavg(),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "platform": platform.platform(),
        },
        "input": {
            "files": floor["files"],
            "bytes": floor["bytes"],
            "rows": floor["rows"],
            "landing": str(landing),
            "generated_rows": sum(counts.values()),
        },
        "seconds": seconds,
        "cpu_seconds": {
            "floor": _r(floor["cpu_seconds"]),
            "full_refresh": _r(full.cpu),
            "increment": _r(inc.cpu),
        },
        "ratios": ratios,
        "peak_rss_bytes": full.peak_rss or None,
        "peak_rss_single_process_bytes": max(full.peak_single, full.children_maxrss) or None,
        "peak_rss_at_peak": [{"process": n, "rss_bytes": b} for n, b in full.peak_breakdown],
        "increment_peak_rss_bytes": inc.peak_rss or None,
        "chart_ms": chart if chart is not None else {"p50": None, "p95": None},
        "checks": checks,
        "floor": {k: floor[k] for k in ("per_entity", "skipped_duplicates", "errors")},
        "full_refresh": {
            "exit_code": full.exit_code,
            "run_id": full.run_id,
            "log": str(full.log),
            "top_steps": [{"step": k, "seconds": _r(v)} for k, v in full.steps[:15]],
            "top_dbt_nodes": [{"node": k, "seconds": _r(v)} for k, v in full.dbt_nodes[:15]],
            "dbt_by_kind": full.dbt_by_kind,
        },
        "increment": {
            "exit_code": inc.exit_code,
            "run_id": inc.run_id,
            "log": str(inc.log),
            "files_added": added,
            "top_steps": [{"step": k, "seconds": _r(v)} for k, v in inc.steps[:10]],
            "dbt_by_kind": inc.dbt_by_kind,
        },
        "bench_seconds": None,
        "notes": notes,
    }
    results["targets"] = evaluate_targets(results)
    results["bench_seconds"] = _r(_now() - t_bench, 1)
    text = json.dumps(results, indent=2, ensure_ascii=False) + "\n"
    (out / "results.json").write_text(text, encoding="utf-8")
    (out / f"results-{scale}.json").write_text(text, encoding="utf-8")
    md = markdown(results)
    (out / "results.md").write_text(md, encoding="utf-8")
    (out / f"results-{scale}.md").write_text(md, encoding="utf-8")
    log("")
    log(md)
    log(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return results
