"""Cost of the data-quality checks: Great Expectations vs the same rules in plain DuckDB SQL.

    .venv/bin/python quality/bench_checks.py bench.json [--rows 1000000] [--table bitrix__deal_snapshot]

Generates a raw table with DuckDB itself (the raw layer's Parquet schema, realistic faults:
duplicates, invalid INNs and phones, unknown stages), with five earlier files in the load
manifest so the volume rule is judged, then runs the table's suite with GX (SQL datasource
on DuckDB, `pipelines.lib.quality.gx`) and with plain SQL (`pipelines.lib.quality.sql`, one
query per rule), checks both give the same outcome per rule, and prints and writes the
median times and their ratio. GX's one-off import cost is reported separately.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from pipelines.lib.mappings import Entity, load_entities
from pipelines.lib.quality import run_suite
from pipelines.lib.quality.duck import raw_connection
from pipelines.lib.quality.rules import load_config, pipeline_stages, raw_suite
from pipelines.lib.settings import PROJECT_ROOT
from pipelines.lib.warehouse import manifest_dir, raw_dir

W10 = [2, 4, 10, 3, 5, 9, 4, 6, 8]


def valid_inns(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    out = []
    while len(out) < n:
        body = [rnd.randint(0, 9) for _ in range(9)]
        check = sum(w * d for w, d in zip(W10, body, strict=True)) % 11 % 10
        out.append("".join(map(str, body)) + str(check))
    return out


def _list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def generate(data: Path, entity: Entity, suite: object, rows: int, now: dt.datetime) -> None:
    """One raw Parquet file of `rows` rows plus five earlier files in the manifest."""
    rules = suite.rules
    key = next((r.columns[:-1] for r in rules if r.kind == "unique"), ())
    inn = {r.column for r in rules if r.kind == "inn"}
    phone = {r.column for r in rules if r.kind == "phone"}
    stage = {r.column: r.params["values"] for r in rules if r.kind == "known_values"}
    inns = _list(valid_inns(1000))
    exprs = {}
    for name, typ in entity.raw_schema().items():
        col = next((c for c in entity.columns if c.name == name), None)
        if name in key:  # ~0.1 % of keys repeat within the file (exported twice)
            base = f"(range % {int(rows * 0.999)})"
            exprs[name] = f"cast({base} as {typ})" if typ != "VARCHAR" else f"'K' || {base}"
        elif name in inn:  # 1 % bad check digit, 0.5 % empty
            exprs[name] = (
                f"case when range % 200 = 1 then null when range % 100 = 3 then '7707083894' "
                f"else {inns}[range % 1000 + 1] end"
            )
        elif name in phone:  # forms of one number; 2 % garbage
            exprs[name] = (
                "case when range % 50 = 7 then '12-34' "
                "when range % 3 = 0 then '8 (916) ' || lpad((range % 9999999)::varchar, 7, '0') "
                "when range % 3 = 1 then '+7916' || lpad((range % 9999999)::varchar, 7, '0') "
                "else '7916' || lpad((range % 9999999)::varchar, 7, '0') || ' доб. 12' end"
            )
        elif name in stage:  # 0.5 % unknown stages
            exprs[name] = (
                f"case when range % 200 = 5 then 'Переговоры' "
                f"else {_list(stage[name] or ['x'])}[range % {len(stage[name] or ['x'])} + 1] end"
            )
        elif name == "_source_file":
            exprs[name] = "'bench.csv'"
        elif name == "_line":
            exprs[name] = "range + 2"
        elif name == "_file_sha256":
            exprs[name] = "'" + "f" * 64 + "'"
        elif name == "_load_id":
            exprs[name] = "'BENCH'"
        elif name == "_loaded_at":
            exprs[name] = f"timestamp '{now.isoformat(sep=' ')}'"
        elif typ == "VARCHAR":
            exprs[name] = f"'{name}-' || (range % 1000)"
        elif typ in {"BIGINT", "DOUBLE"} or typ.startswith("DECIMAL"):
            lo = col.min if col is not None and col.min is not None else 0
            exprs[name] = f"cast({lo} + (range * 7919) % 100000 / 100 as {typ})"
        elif typ == "DATE":
            exprs[name] = f"date '{now.date()}' - cast(range % 700 as integer)"
        elif typ == "TIMESTAMP":
            exprs[name] = f"timestamp '{now.isoformat(sep=' ')}' - to_seconds(range * 31)"
        elif typ == "BOOLEAN":
            exprs[name] = "range % 2 = 0"
        else:
            exprs[name] = "null"
    target = raw_dir(data, entity) / "ffffffffffffffff.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    select = ", ".join(f'{e} as "{n}"' for n, e in exprs.items())
    con = duckdb.connect()
    con.execute(
        f"copy (select {select} from range({rows})) to '{target}' "
        "(format parquet, compression zstd, row_group_size 122880)"
    )
    con.close()
    mdir = manifest_dir(data)
    mdir.mkdir(parents=True, exist_ok=True)
    history = [("BENCH", "f" * 64, rows, now)] + [
        (f"EARLIER{i}", f"{i}" * 64, int(rows * (0.9 + 0.05 * i)), now - dt.timedelta(days=i))
        for i in range(1, 6)
    ]
    for load_id, sha, n, at in history:
        (mdir / f"{entity.table}__{sha}.json").write_text(
            json.dumps(
                {
                    "load_id": load_id,
                    "loaded_at": at.isoformat(sep=" "),
                    "table_name": entity.table,
                    "file_sha256": sha,
                    "rows_loaded": n,
                    "source_system": entity.system,
                    "entity": entity.name,
                }
            ),  # fmt: skip
            encoding="utf-8",
        )


def _cpu() -> float:
    """CPU seconds of this process, all threads (DuckDB's too): robust to other load."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def timed_pairs(runs: dict[str, object], repeat: int) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU seconds of each run, alternating runs so that load changes hit both."""
    out: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in runs}
    for _ in range(repeat):
        for name, fn in runs.items():
            w, c = time.perf_counter(), _cpu()
            fn()
            out[name]["cpu"].append(_cpu() - c)
            out[name]["wall"].append(time.perf_counter() - w)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="JSON file to write the figures to")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--table", default="bitrix__deal_snapshot")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    entities = load_entities(PROJECT_ROOT / "sources")
    entity = next(e for e in entities if e.table == args.table)
    stages = pipeline_stages(PROJECT_ROOT / "dbt_project" / "seeds")
    suite = raw_suite(entity, load_config(PROJECT_ROOT / "quality" / "suites.yml"), stages)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)

    with tempfile.TemporaryDirectory(prefix="bench-checks-") as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        generate(data, entity, suite, args.rows, now)
        gen_s = time.perf_counter() - t0
        con = raw_connection(data, entities)

        t0 = time.perf_counter()
        from pipelines.lib.quality.gx import GxChecks

        import_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        checker = GxChecks(con)
        setup_s = time.perf_counter() - t0

        run_suite(con, suite, engine="sql", now=now)  # warm caches for both
        run_suite(con, suite, checker=checker, now=now)
        outs: dict[str, list] = {}
        times = timed_pairs(
            {
                "sql": lambda: outs.__setitem__(
                    "sql", run_suite(con, suite, engine="sql", now=now)[1]
                ),
                "gx": lambda: outs.__setitem__(
                    "gx", run_suite(con, suite, checker=checker, now=now)[1]
                ),
            },
            args.repeat,
        )
        checker.close()
        con.close()

    sql_map = {o.rule.name: (o.passed, o.unexpected_count) for o in outs["sql"]}
    gx_map = {o.rule.name: (o.passed, o.unexpected_count) for o in outs["gx"]}
    mismatches = {
        k: {"sql": sql_map[k], "gx": gx_map.get(k)} for k in sql_map if sql_map[k] != gx_map.get(k)
    }
    med = {k: {m: statistics.median(v[m]) for m in v} for k, v in times.items()}
    pair_ratio = statistics.median(
        g / s for g, s in zip(times["gx"]["wall"], times["sql"]["wall"], strict=True)
    )
    figures = {
        "table": args.table,
        "rows": args.rows,
        "rules": len(suite.rules),
        "repeat": args.repeat,
        "sql_wall_seconds_median": round(med["sql"]["wall"], 4),
        "gx_wall_seconds_median": round(med["gx"]["wall"], 4),
        "ratio_gx_to_sql_wall": round(med["gx"]["wall"] / med["sql"]["wall"], 3),
        "ratio_gx_to_sql_wall_pairwise_median": round(pair_ratio, 3),
        "sql_cpu_seconds_median": round(med["sql"]["cpu"], 4),
        "gx_cpu_seconds_median": round(med["gx"]["cpu"], 4),
        "ratio_gx_to_sql_cpu": round(med["gx"]["cpu"] / med["sql"]["cpu"], 3),
        "runs": {k: {m: [round(x, 4) for x in v[m]] for m in v} for k, v in times.items()},
        "gx_import_seconds": round(import_s, 3),
        "gx_context_setup_seconds": round(setup_s, 3),
        "generate_seconds": round(gen_s, 3),
        "failed_rules": sorted(k for k, (ok, _) in gx_map.items() if not ok),
        "outcomes_agree": not mismatches,
        "mismatches": mismatches,
        "machine": {
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },  # fmt: skip
        "measured_at": now.isoformat(sep=" "),
    }
    f = figures
    print(f"{args.table}: {args.rows:,} rows, {len(suite.rules)} rules, median of {args.repeat}")
    print("                                   wall s    cpu s")
    print(
        f"  plain SQL (one query per rule) {f['sql_wall_seconds_median']:8.3f} {f['sql_cpu_seconds_median']:8.3f}"
    )
    print(
        f"  Great Expectations (SQL path)  {f['gx_wall_seconds_median']:8.3f} {f['gx_cpu_seconds_median']:8.3f}"
    )
    print(
        f"  ratio GX / SQL                 {f['ratio_gx_to_sql_wall']:8.2f}x {f['ratio_gx_to_sql_cpu']:7.2f}x"
        f"   (pairwise wall {f['ratio_gx_to_sql_wall_pairwise_median']:.2f}x)"
    )
    print(f"  GX import (once per process)   {import_s:8.3f} s; context {setup_s:.3f} s")
    print(f"  outcomes agree: {not mismatches}; failed rules: {', '.join(f['failed_rules'])}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return 0 if not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
