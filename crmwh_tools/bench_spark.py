"""The bench's Spark columns: DuckDB, Spark in process and the Spark service side by side.

    python -m crmwh_tools.bench_spark --scale small --workers 1 [--out bench]

One landing of demo exports (`crmwh_tools.bench.ensure_landing`), one raw layer, three
engines, each measured on a full refresh and then on an increment of one more export day
(`crmwh_tools.bench.write_next_day`):

- duckdb: `crmwh run` (the Dagster job: ingest, checks, dbt, publish);
- spark: `crmwh run --engine spark` (dbt alone, Spark in the run's own JVM, `local[2]`);
- service: `crmwh run --engine spark-thrift` (the Dagster job, dbt on a local standalone
  cluster of `--workers` workers started by `crmwh spark start`).

For every run: wall time and the peak RSS of its process tree; for the cluster, the peak
RSS of each JVM (master, workers, Thrift server, executors) sampled by class name. After
the increments, the service's marts (read back from the cluster's warehouse folder) are
compared row by row with a DuckDB build from scratch (dbt alone) over the same raw layer,
and the lines the incremental models log ("fct_call: incremental, 1 of 2 loads new, ...")
are kept. Writes
`<out>/results-spark-<scale>-w<workers>[-t<threads>].{json,md}` (threads: settings.yml
`spark.threads`, dbt nodes at a time on the server; files without it: one). Runs only on a machine with the
`spark` extra and Java 17/21; it is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from crmwh_tools.bench import (
    GIB,
    TreeSampler,
    _loadavg,
    ensure_landing,
    link_landing,
    rss_bytes,
    write_next_day,
)
from crmwh_tools.spark_compare import compare_marts
from pipelines.lib.spark import ThriftTarget

ROOT = Path(__file__).resolve().parents[1]
JVM_ROLES = {
    "org.apache.spark.deploy.master.Master": "master",
    "org.apache.spark.deploy.worker.Worker": "worker",
    "HiveThriftServer2": "Thrift server (driver)",
    "CoarseGrainedExecutorBackend": "executor",
}


class JvmSampler:
    """Peak RSS of every JVM of the cluster under `home`, by role (a thread, 0.5 s)."""

    def __init__(self, home: Path, interval: float = 0.5) -> None:
        self.home, self.interval = str(home), interval
        self.peak: dict[str, int] = {}
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> JvmSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
                )
                cwd = os.readlink(proc / "cwd")
            except OSError:
                continue
            if "java" not in cmd or (self.home not in cmd and not cwd.startswith(self.home)):
                continue
            role = next((r for key, r in JVM_ROLES.items() if key in cmd), "other JVM")
            sizes[role] = sizes.get(role, 0) + rss_bytes(int(proc.name))
        return sizes

    def _loop(self) -> None:
        while not self._stop.is_set():
            sizes = self._sizes()
            for role, size in sizes.items():
                self.peak[role] = max(self.peak.get(role, 0), size)
            self.peak_total = max(self.peak_total, sum(sizes.values()))
            self._stop.wait(self.interval)


def _run(argv: list[str], env: dict[str, str], log: Path, crmwh: bool = True) -> dict[str, Any]:
    """One `crmwh` command (``crmwh``, else any command line): exit code, wall seconds, peak
    RSS of its process tree."""
    with log.open("wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *argv] if crmwh else argv, cwd=ROOT,
            env=env, stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
        with TreeSampler(proc.pid, interval=0.5) as sampler:
            code = proc.wait()
        wall = time.perf_counter() - t0
    return {"exit": code, "seconds": round(wall, 1), "peak_rss_bytes": sampler.peak,
            "log": str(log)}  # fmt: skip


def _incremental_lines(log: Path) -> list[str]:
    text = log.read_text(encoding="utf-8", errors="replace")
    return sorted(set(re.findall(r"\b(\w+: incremental, \d+ of \d+ loads new, [^\n]*)", text)))


def free_ports(n: int) -> list[int]:
    """`n` distinct ports free on 127.0.0.1 now (held together while chosen)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


ENGINES = ("duckdb", "spark", "service")


def run_bench(
    scale: str,
    workers: int,
    out: Path,
    work: Path,
    seed: int = 42,
    engines: tuple[str, ...] = ENGINES,
) -> dict[str, Any]:
    from pipelines.lib.settings import load_settings
    from pipelines.lib.spark_service import ServiceConfig, service_dir, start, stop

    source, _, _ = ensure_landing(out, scale, seed)
    landing = work / "landing"
    link_landing(source, landing)
    master, master_ui, worker_ui, thrift = free_ports(4)
    config = ServiceConfig(
        master_port=master, master_ui_port=master_ui, worker_ui_port=worker_ui,
        thrift_port=thrift, workers=workers, worker_cores=max(1, 2 // workers),
        worker_memory="2g", executor_memory="2g", driver_memory="2g", start_timeout=600,
    )  # fmt: skip
    env = {
        **os.environ,
        "CRMWH_PATHS__LANDING": str(landing),
        "CRMWH_PATHS__DATA": str(work / "data"),
        "CRMWH_PATHS__STATE": str(work / "state"),
        "CRMWH_PATHS__WAREHOUSE": str(work / "warehouse.duckdb"),
        "CRMWH_METRICS__AS_OF": dt.date.today().isoformat(),  # ages agree across engines
        "CRMWH_SPARK__THRIFT_PORT": str(thrift),
        "PYTHONUNBUFFERED": "1",
    }
    settings = load_settings(environ=env)
    home = service_dir(settings)
    results: dict[str, Any] = {
        "scale": scale, "workers": workers, "worker_cores": config.worker_cores,
        "dbt_threads": ThriftTarget.from_settings(settings).threads,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_before": _loadavg()},
        "engines": list(engines),
        "runs": {},
    }  # fmt: skip
    runs = results["runs"]

    def step(name: str, argv: list[str], sampler: JvmSampler | None = None) -> None:
        if name.rsplit("_", 1)[0] not in engines:
            return
        print(f"[bench-spark] {name}: crmwh {' '.join(argv)}", flush=True)
        runs[name] = _run(argv, env, work / f"{name}.log")
        if sampler is not None:
            runs[name]["jvm_peak_rss_bytes"] = dict(sampler.peak)
            runs[name]["jvm_peak_total_bytes"] = sampler.peak_total
        print(f"[bench-spark]   exit {runs[name]['exit']} in {runs[name]['seconds']}s", flush=True)

    step("duckdb_full", ["run", "--engine", "duckdb"])
    step("spark_full", ["run", "--engine", "spark", "--full-refresh"])
    t0 = time.perf_counter()
    try:
        start(settings, config)
        results["service_start_seconds"] = round(time.perf_counter() - t0, 1)
        with JvmSampler(home) as jvm:
            step("service_full", ["run", "--engine", "spark-thrift", "--full-refresh"], jvm)
        results["next_day_rows"] = write_next_day(landing)
        step("duckdb_increment", ["run", "--engine", "duckdb"])
        step("spark_increment", ["run", "--engine", "spark"])
        with JvmSampler(home) as jvm:
            step("service_increment", ["run", "--engine", "spark-thrift"], jvm)
        results["service_incremental_log"] = _incremental_lines(work / "service_increment.log")
        # the reference: DuckDB from scratch over the same raw layer (dbt alone: a run's
        # ingest and checks would add a load of their own, and a row to mart_data_quality)
        reference = work / "reference.duckdb"
        if "service" in engines:
            print("[bench-spark] reference: dbt build on DuckDB over the raw layer", flush=True)
            runs["duckdb_reference"] = duckdb_reference(settings, reference, env, work)
            results["reference"] = "dbt"
    finally:
        stop(settings, config)
    if "service" in engines:
        differences, rows = compare_marts(reference, home / "warehouse" / "marts.db")
        results["service_increment_vs_duckdb_full"] = {"rows_compared": rows,
                                                       "differences": differences}  # fmt: skip
    results["machine"]["loadavg_after"] = _loadavg()
    for name, run in runs.items():
        if run["exit"] != 0:
            results.setdefault("failed_runs", []).append(name)
    return results


def duckdb_reference(
    settings: Any, reference: Path, env: dict[str, str], work: Path
) -> dict[str, Any]:
    """A DuckDB build of the dbt project (seeds and models) from scratch over the raw layer
    of `settings`, into `reference`: what the service's marts are compared with."""
    import duckdb

    from pipelines.lib.dbt import dbt_env, dbt_executable
    from pipelines.lib.mappings import load_entities
    from pipelines.lib.warehouse import create_raw_views

    con = duckdb.connect(str(reference))
    try:
        entities = load_entities(settings.sources_dir, settings.config_dir)
        create_raw_views(con, settings.data_dir.resolve(), entities)
    finally:
        con.close()
    project = settings.dbt_project_dir
    argv = [dbt_executable(), "build", "--project-dir", str(project), "--profiles-dir",
            str(project), "--target-path", str(work / "target-reference"),
            "--log-path", str(work / "logs-reference"),
            "--vars", json.dumps(settings.dbt_vars()),
            "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]  # fmt: skip
    return _run(argv, {**env, **dbt_env(settings, reference)}, work / "duckdb_reference.log",
                crmwh=False)  # fmt: skip


def _gib(x: int | None) -> str:
    return f"{x / GIB:.2f} GiB" if x else "—"


def markdown(r: dict[str, Any]) -> str:
    runs = r["runs"]
    lines = [
        f"# Spark columns of the bench: {r['scale']}, {r['workers']} worker(s) × "
        f"{r['worker_cores']} core(s), dbt {r.get('dbt_threads', 1)} node(s) at a time",
        "",
        f"Machine: {r['machine']['cpus']} CPUs, load before {r['machine']['loadavg_before']}, "
        f"after {r['machine']['loadavg_after']}. Cluster start: "
        f"{r.get('service_start_seconds', '—')} s.",
        "",
        "| engine | full refresh | increment (one export day) | increment / full | peak RSS, "
        "run's process tree | peak RSS, cluster JVMs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, key in (("DuckDB (job)", "duckdb"), ("Spark in process (dbt)", "spark"),
                       ("Spark service (job over Thrift)", "service")):  # fmt: skip
        if key not in r.get("engines", ENGINES):
            continue  # not measured in this run
        full, inc = runs.get(f"{key}_full", {}), runs.get(f"{key}_increment", {})
        ratio = (
            inc["seconds"] / full["seconds"] if full.get("seconds") and inc.get("seconds") else None
        )
        jvm = max(full.get("jvm_peak_total_bytes", 0), inc.get("jvm_peak_total_bytes", 0))
        lines.append(
            f"| {label} | {full.get('seconds') or '—'} s | {inc.get('seconds') or '—'} s | "
            f"{f'{ratio:.2f}' if ratio else '—'} | "
            f"{_gib(max(full.get('peak_rss_bytes', 0), inc.get('peak_rss_bytes', 0)))} | "
            f"{_gib(jvm) if key == 'service' else '—'} |"
        )
    peaks: dict[str, int] = {}
    for key in ("service_full", "service_increment"):
        for role, size in (runs.get(key, {}).get("jvm_peak_rss_bytes") or {}).items():
            peaks[role] = max(peaks.get(role, 0), size)
    lines += ["", "Peak RSS of the cluster's JVMs by role (summed over a role's processes): "
              + ", ".join(f"{role} {_gib(size)}" for role, size in sorted(peaks.items())), ""]  # fmt: skip
    comp = r.get("service_increment_vs_duckdb_full") or {}
    reference = (
        "DuckDB built from scratch (dbt alone)"
        if r.get("reference") == "dbt"
        else "a DuckDB full refresh (`crmwh run --full-refresh`)"  # the first runs' reference
    )
    lines.append(
        f"Service increment vs {reference} over the same raw layer: "
        f"{comp.get('rows_compared', 0):,} rows compared, "
        f"{len(comp.get('differences') or [])} differences."
    )
    for diff in (comp.get("differences") or [])[:10]:
        lines.append(f"- {diff}")
    if r.get("service_incremental_log"):
        lines += ["", "The service increment's incremental models said:", ""]
        lines += [f"- `{line}`" for line in r["service_incremental_log"]]
    if r.get("failed_runs"):
        lines += ["", f"Failed runs: {', '.join(r['failed_runs'])} (see their logs)."]
    for note in r.get("notes") or []:  # added by hand to a results file, then re-rendered
        lines += ["", f"Note: {note}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m crmwh_tools.bench_spark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--scale", choices=["small", "medium"], default="small")
    p.add_argument("--workers", type=int, choices=[1, 2], default=1)
    p.add_argument("--out", type=Path, default=ROOT / "bench")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--engines", default=",".join(ENGINES),
                   help="which to measure, of duckdb,spark,service (with service, a DuckDB "
                        "build from scratch is the comparison's reference)")  # fmt: skip
    p.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only write the .md of a results file again (after adding notes)",
    )
    args = p.parse_args(argv)
    if args.render:
        text = markdown(json.loads(args.render.read_text(encoding="utf-8")))
        args.render.with_suffix(".md").write_text(text, encoding="utf-8")
        print(text)
        return 0
    work = Path(tempfile.mkdtemp(prefix=f"bench-spark-{args.scale}-"))
    try:
        engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
        results = run_bench(args.scale, args.workers, args.out, work, engines=engines)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    threads = results.get("dbt_threads", 1)
    suffix = f"-t{threads}" if threads > 1 else ""  # the first results: one node at a time
    stem = args.out / f"results-spark-{args.scale}-w{args.workers}{suffix}"
    args.out.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    text = markdown(results)
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    comp = results.get("service_increment_vs_duckdb_full") or {}
    return 1 if results.get("failed_runs") or comp.get("differences") else 0


if __name__ == "__main__":
    sys.exit(main())
