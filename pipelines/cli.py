"""`crmwh`: the command line. Thin: parses flags, sets paths, calls the library."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipelines.lib.settings import get_settings
from pipelines.run import dagster_home


def _apply_path_flags(args: argparse.Namespace) -> None:
    """CLI flags win over settings.yml: pass them on as CRMWH_PATHS__* before loading."""
    for flag, key in (("landing", "LANDING"), ("warehouse", "WAREHOUSE"), ("data", "DATA")):
        value = getattr(args, flag, None)
        if value:
            os.environ[f"CRMWH_PATHS__{key}"] = str(Path(value).resolve())
    get_settings.cache_clear()


def cmd_demo_data(args: argparse.Namespace) -> int:
    from pipelines.lib.demo_data import generate

    out = Path(args.out).resolve()
    t0 = time.perf_counter()
    counts = generate(out, seed=args.seed, scale=args.scale)
    print(f"wrote sample exports ({args.scale}, seed {args.seed}) to {out} "
          f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
    for name, n in sorted(counts.items()):
        print(f"  {name:40s} {n:>12,}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    _apply_path_flags(args)
    if args.engine == "spark":
        from pipelines.lib.spark import run_spark

        return run_spark(get_settings())
    from pipelines.run import run_pipeline

    return run_pipeline(verbose=args.verbose, wait=args.wait)


def cmd_serve(args: argparse.Namespace) -> int:
    _apply_path_flags(args)
    from pipelines.lib import superset

    settings = get_settings()
    warehouse = settings.warehouse_path
    if not warehouse.exists():
        print(f"{warehouse} does not exist yet: run `crmwh run` first", file=sys.stderr)
        return 2
    superset.ensure_installed()
    creds = superset.prepare(warehouse, settings.state_dir)
    procs: list[subprocess.Popen] = []
    try:
        procs.append(superset.start(warehouse, settings.state_dir, port=args.port))
        if not args.no_dagster:
            env = dict(os.environ, DAGSTER_HOME=dagster_home())
            procs.append(
                subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("dagster-webserver")),
                        "-m",
                        "pipelines.definitions",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(args.dagster_port),
                    ],
                    env=env,
                    cwd=settings.root,
                    start_new_session=True,
                )  # fmt: skip
            )
        print(f"Superset:  http://127.0.0.1:{args.port}/  user {creds.username}")
        if creds.generated:
            print(f"           password {creds.password}  (stored in {creds.password_file})")
        else:
            print("           password: the one in SUPERSET_ADMIN_PASSWORD")
        if not args.no_dagster:
            print(f"Dagster:   http://127.0.0.1:{args.dagster_port}/")
        print("Press Ctrl+C to stop.")
        stop = False

        def _stop(*_: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        while not stop and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        for p in procs:
            _stop_group(p)
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    _apply_path_flags(args)
    import datetime as dt

    from pipelines.lib.backfill import forget_entries, plan_backfill
    from pipelines.run import RunLockedError, run_lock, run_locked

    settings = get_settings()
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    plan = plan_backfill(settings, start, end)
    print(f"backfill {start}..{end}: {len(plan.forget)} loaded file(s) to rebuild, "
          f"{len(plan.landed)} landed file(s) in range")  # fmt: skip
    try:
        with run_lock(settings.warehouse_path, wait=args.wait):
            forget_entries(settings, plan.forget)
            return run_locked(verbose=args.verbose)
    except RunLockedError as exc:
        print(f"crmwh backfill: {exc}", file=sys.stderr)
        return 3


def cmd_rollback(args: argparse.Namespace) -> int:
    _apply_path_flags(args)
    from pipelines.lib.publish import rollback
    from pipelines.run import RunLockedError, run_lock

    served = get_settings().warehouse_path
    try:
        with run_lock(served):
            target = rollback(served)
    except (RunLockedError, RuntimeError) as exc:
        print(f"crmwh rollback: {exc}", file=sys.stderr)
        return 1
    print(f"{served} now serves the version published as {target.name}")
    return 0


def _stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crmwh",
        description="crm-warehouse: CRM, telephony and accounting exports -> DuckDB marts -> Superset.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo-data", help="write sample exports in every supported format")
    p.add_argument("--out", required=True, help="landing folder to write")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--scale", choices=["small", "medium", "large"], default="small")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("run", help="ingest -> checks -> dbt build -> publish, through Dagster")
    p.add_argument("--landing", help="landing folder (default: settings.yml paths.landing)")
    p.add_argument("--warehouse", help="published warehouse file (default: warehouse.duckdb)")
    p.add_argument("--data", help="raw/quarantine/manifest folder (default: data/)")
    p.add_argument("-v", "--verbose", action="store_true", help="show Dagster's debug events")
    p.add_argument("--wait", action="store_true", help="wait for a running run instead of refusing")
    p.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                   help="spark: build the marts on Spark from the ingested raw layer (extra `spark`)")  # fmt: skip
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "backfill", help="rebuild the raw layer of a range of export dates, then run"
    )
    p.add_argument("--start", required=True, help="first export date, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="last export date, YYYY-MM-DD (inclusive)")
    p.add_argument("--landing", help="landing folder (default: settings.yml paths.landing)")
    p.add_argument("--warehouse", help="published warehouse file (default: warehouse.duckdb)")
    p.add_argument("--data", help="raw/quarantine/manifest folder (default: data/)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--wait", action="store_true", help="wait for a running run instead of refusing")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("rollback", help="serve the previously published warehouse again")
    p.add_argument("--warehouse", help="published warehouse file (default: warehouse.duckdb)")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("serve", help="start Superset (and the Dagster UI) on 127.0.0.1")
    p.add_argument("--warehouse", help="published warehouse file to serve")
    p.add_argument("--port", type=int, default=8088)
    p.add_argument("--dagster-port", type=int, default=3000)
    p.add_argument("--no-dagster", action="store_true", help="start Superset only")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
