"""`crmwh`: the command line. Thin: parses flags, sets paths, calls the library."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

from pipelines.lib.settings import DBT_ENGINES, Settings, load_settings

PATH_FLAGS = (("landing", "LANDING"), ("warehouse", "WAREHOUSE"), ("data", "DATA"),
              ("config", "CONFIG"))  # fmt: skip


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    """`--config DIR` on a command that reads configuration (mappings, company tables)."""
    parser.add_argument(
        "--config", metavar="DIR",
        help="your configuration folder (`crmwh init DIR`; default: settings.yml paths.config)",
    )  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings of this command: settings.yml, `CRMWH_*` variables, then the path
    flags (`--landing`, `--warehouse`, `--data`, `--config`), which win. Built once and
    passed down; child processes receive them through `Settings.environment`."""
    paths = {}
    for flag, key in PATH_FLAGS:
        value = getattr(args, flag, None)
        if value:
            paths[key.lower()] = str(Path(value).resolve())
    overrides: dict[str, dict[str, str]] = {"paths": paths}
    engine = getattr(args, "engine", None)
    if engine in DBT_ENGINES:  # `--engine spark` is a dbt build of its own (cmd_run)
        overrides["dbt"] = {"engine": engine}
    return load_settings(overrides=overrides)


def _config_problem(settings: Settings) -> str | None:
    """Why the configuration in force cannot be used (mappings, tables), or None."""
    from pipelines.lib.config_folder import ConfigFolderError, check_config
    from pipelines.lib.mappings import MappingError

    try:
        check_config(settings)
    except (ConfigFolderError, MappingError) as exc:
        return str(exc)
    return None


def cmd_init(args: argparse.Namespace) -> int:
    from pipelines.lib.config_folder import ConfigFolderError, init_config_folder

    settings = load_settings()
    target = Path(args.dir).resolve()
    try:
        written, kept = init_config_folder(
            target, settings.sources_dir, settings.seeds_dir, with_mappings=args.with_mappings
        )
    except ConfigFolderError as exc:
        print(f"crmwh init: {exc}", file=sys.stderr)
        return 2
    for p in written:
        print(f"  wrote {p.relative_to(target)}")
    if kept:
        print(f"  kept {len(kept)} existing file(s) as they were")
    print(f"configuration folder {target}\n"
          f"use it with `crmwh run --config {target}` or in settings.yml:\n"
          f"  paths:\n    config: {target}")  # fmt: skip
    return 0


def cmd_mapping_check(args: argparse.Namespace) -> int:
    """What a run would make of the landing folder, without Dagster: exit 0 when clean."""
    settings = settings_from_args(args)
    from pipelines.lib.ingest import IngestOptions
    from pipelines.lib.mappings import MappingError, load_entities
    from pipelines.lib.onboarding import check_landing, format_check

    landing = settings.landing_dir
    if not landing.is_dir():
        print(f"crmwh mapping check: landing folder {landing} does not exist", file=sys.stderr)
        return 2
    try:
        entities = load_entities(settings.sources_dir, settings.config_dir)
    except MappingError as exc:
        print(f"crmwh mapping check: {exc}", file=sys.stderr)
        return 2
    report = check_landing(landing, entities, options=IngestOptions.from_settings(settings))
    print(format_check(report))
    return 0 if report.clean else 1


def cmd_quarantine(args: argparse.Namespace) -> int:
    """List quarantined rows (file, line, reason, raw text), or write them as CSV."""
    data = settings_from_args(args).data_dir
    from pipelines.lib.onboarding import format_quarantine, quarantine_rows, write_quarantine_csv

    if args.csv:
        n = write_quarantine_csv(data, Path(args.csv), args.file, args.reason)
        print(f"wrote {n} quarantined row(s) to {args.csv}")
        return 0
    print(format_quarantine(quarantine_rows(data, args.file, args.reason)))
    return 0


def cmd_spark(args: argparse.Namespace) -> int:
    from pipelines.lib.spark_service import run_command

    return run_command(load_settings(), args)


def cmd_demo_data(args: argparse.Namespace) -> int:
    from crmwh_tools.demo_data import generate, previous_end
    from crmwh_tools.demo_data.config import today_in_company

    out = Path(args.out).resolve()
    end = args.end_date or previous_end(out)
    if end and not args.end_date:
        print(f"{out} already holds sample exports up to {end}: rewriting those (an empty "
              "folder gets today's, --end-date another day's)")  # fmt: skip
    end = end or today_in_company()
    t0 = time.perf_counter()
    counts = generate(out, seed=args.seed, scale=args.scale, end=end)
    print(f"wrote sample exports ({args.scale}, seed {args.seed}, last export {end}) to {out} "
          f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
    for name, n in sorted(counts.items()):
        print(f"  {name:40s} {n:>12,}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    problem = _config_problem(settings)
    if problem:
        print(f"crmwh run: {problem}", file=sys.stderr)
        return 2
    if args.engine == "spark":
        from pipelines.lib.spark import run_spark

        return run_spark(settings, ["--full-refresh"] if args.full_refresh else [])
    if settings.dbt_engine == "spark-thrift":
        from pipelines.lib.spark import thrift_problem

        problem = thrift_problem(settings)
        if problem:
            print(f"crmwh run: {problem}", file=sys.stderr)
            return 1
    from pipelines.run import run_pipeline

    return run_pipeline(
        settings, verbose=args.verbose, wait=args.wait, full_refresh=args.full_refresh
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from pipelines.lib.serve import serve

    return serve(
        settings_from_args(args), port=args.port, dagster_port=args.dagster_port,
        dagster=not args.no_dagster, dagster_write=args.dagster_write, reports=args.reports,
        pg_port=args.pg_port, redis_port=args.redis_port, print_procfile=args.print_procfile,
        engine=args.engine,
    )  # fmt: skip


def cmd_backfill(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    import datetime as dt

    from pipelines.lib.backfill import plan_backfill
    from pipelines.run import RunLockedError, run_lock, run_locked

    problem = _config_problem(settings)
    if problem:
        print(f"crmwh backfill: {problem}", file=sys.stderr)
        return 2
    if settings.dbt_engine == "spark-thrift":
        from pipelines.lib.spark import thrift_problem

        problem = thrift_problem(settings)
        if problem:
            print(f"crmwh backfill: {problem}", file=sys.stderr)
            return 1
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    try:
        plan = plan_backfill(settings, start, end)
    except ValueError as exc:
        print(f"crmwh backfill: {exc}", file=sys.stderr)
        return 2
    if (plan.start, plan.end) != (start, end):
        print(f"backfill {start}..{end}: rebuilding partitions {plan.start}..{plan.end}, the "
              "existing ones (files dated before partitions.start_date belong to the first "
              "partition, files dated after today to today's)")  # fmt: skip
    print(f"backfill {start}..{end}: {len(plan.forget)} loaded file(s) to rebuild, "
          f"{len(plan.landed)} landed file(s) in range")  # fmt: skip
    try:
        with run_lock(settings.warehouse_path, wait=args.wait):
            # the ingest assets forget and re-ingest the range (as in a Dagster UI backfill)
            return run_locked(settings, verbose=args.verbose, backfill=(plan.start, plan.end))
    except RunLockedError as exc:
        print(f"crmwh backfill: {exc}", file=sys.stderr)
        return 3


def cmd_rollback(args: argparse.Namespace) -> int:
    served = settings_from_args(args).warehouse_path
    from pipelines.lib.publish import rollback
    from pipelines.run import RunLockedError, run_lock

    try:
        with run_lock(served):
            target = rollback(served)
    except (RunLockedError, RuntimeError) as exc:
        print(f"crmwh rollback: {exc}", file=sys.stderr)
        return 1
    print(f"{served} now serves the version published as {target.name}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from crmwh_tools.bench import run_bench

    config = settings_from_args(argparse.Namespace(config=args.config)).config_dir
    results = run_bench(
        args.scale, Path(args.out), seed=args.seed, skip_dashboard=args.skip_dashboard,
        clients=args.clients, chart_rounds=args.chart_rounds, config=config,
    )  # fmt: skip
    return 0 if results["full_refresh"]["exit_code"] in (0, 2) else 1


def cmd_users(args: argparse.Namespace) -> int:
    """Superset users of this install: add (or update), list, remove."""
    import getpass
    import json

    import yaml

    from pipelines.lib import superset

    state = load_settings().state_dir
    if not (superset.superset_state_dir(state) / "secret_key").exists():
        print(
            f"crmwh users: Superset is not set up in {state}: run `crmwh serve` once first",
            file=sys.stderr,
        )
        return 1
    try:
        if args.users_command == "list":
            users = superset.list_users(state)
            if args.json:
                print(json.dumps(users, indent=2))
                return 0
            print(f"{'user':<20} {'roles':<24} {'manager id':<14} {'active':<6} last login")
            for u in users:
                print(
                    f"{u['username']:<20} {','.join(u['roles']):<24} "
                    f"{u['manager_id'] or '-':<14} {'yes' if u['active'] else 'no':<6} "
                    f"{u['last_login'] or 'never'}"
                )
            return 0
        if args.users_command == "remove":
            superset.remove_user(state, args.name)
            print(f"removed user {args.name}")
            return 0
        spec = yaml.safe_load(superset.SECURITY_FILE.read_text(encoding="utf-8"))
        known = {"Admin", *spec.get("roles", {})}
        unknown = [r for r in args.role if r not in known]
        if unknown:
            print(
                f"crmwh users add: unknown role {', '.join(unknown)}"
                f" (roles: {', '.join(sorted(known))})",
                file=sys.stderr,
            )
            return 2
        password = os.environ.get("CRMWH_USER_PASSWORD", "")
        if not password:
            if not sys.stdin.isatty():
                print(
                    "crmwh users add: set CRMWH_USER_PASSWORD or run it in a terminal",
                    file=sys.stderr,
                )
                return 2
            password = getpass.getpass(f"password for {args.name}: ")
            if getpass.getpass("again: ") != password:
                print("crmwh users add: the passwords differ", file=sys.stderr)
                return 2
        superset.ensure_user(
            state, args.name, password, args.role, email=args.email, manager_id=args.manager_id
        )
    except superset.SupersetError as exc:
        print(f"crmwh users {args.users_command}: {exc}", file=sys.stderr)
        return 1
    scope = f", rows of manager {args.manager_id}" if args.manager_id else ""
    print(f"user {args.name}: {', '.join(args.role)}{scope}")
    return 0


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
    p.add_argument("--end-date", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                   help="day of the last export (default: that of the exports already in "
                        "--out, else today in Europe/Moscow); the same seed and end date "
                        "always give the same files")  # fmt: skip
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("run", help="ingest -> checks -> dbt build -> publish, through Dagster")
    p.add_argument("--landing", help="landing folder (default: settings.yml paths.landing)")
    p.add_argument("--warehouse", help="published warehouse file (default: warehouse.duckdb)")
    p.add_argument("--data", help="raw/quarantine/manifest folder (default: data/)")
    p.add_argument("-v", "--verbose", action="store_true", help="show Dagster's debug events")
    p.add_argument("--wait", action="store_true", help="wait for a running run instead of refusing")
    p.add_argument("--full-refresh", action="store_true",
                   help="rebuild the incremental dbt models from scratch")  # fmt: skip
    p.add_argument("--engine", choices=[*DBT_ENGINES, "spark"],
                   help="where dbt builds (default: settings.yml dbt.engine): duckdb; "
                        "spark-thrift, the same job with dbt on a Spark Thrift server "
                        "(settings.yml spark:, `crmwh spark start`); spark, dbt alone on Spark "
                        "in this process over the ingested raw layer. Spark needs the extra "
                        "`spark`")  # fmt: skip
    add_config_flag(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "spark", help="a local Spark cluster (master, workers, Thrift server): start|stop|status"
    )
    from pipelines.lib.spark_service import add_arguments as add_spark_arguments

    add_spark_arguments(p)
    p.set_defaults(func=cmd_spark)

    p = sub.add_parser(
        "backfill",
        help="rebuild the export-date partitions START..END of the raw layer, then run",
    )
    p.add_argument("--start", required=True, help="first export date, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="last export date, YYYY-MM-DD (inclusive)")
    p.add_argument("--landing", help="landing folder (default: settings.yml paths.landing)")
    p.add_argument("--warehouse", help="published warehouse file (default: warehouse.duckdb)")
    p.add_argument("--data", help="raw/quarantine/manifest folder (default: data/)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--wait", action="store_true", help="wait for a running run instead of refusing")
    p.add_argument("--engine", choices=DBT_ENGINES,
                   help="where dbt builds (default: settings.yml dbt.engine)")  # fmt: skip
    add_config_flag(p)
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("rollback", help="serve the previously published warehouse again")
    p.add_argument("--warehouse", help="published warehouse file (default: warehouse.duckdb)")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("bench", help="benchmark: floor, full refresh, increment, memory, charts")
    p.add_argument("--scale", choices=["small", "medium", "large"], default="small")
    p.add_argument("--out", default="bench", help="results and work folder (default: bench/)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--skip-dashboard", action="store_true", help="do not start Superset")
    p.add_argument("--clients", type=int, default=8, help="concurrent chart-data clients")
    p.add_argument("--chart-rounds", type=int, default=1, help="passes over all charts per client")
    add_config_flag(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("serve", help="start Superset (and the Dagster UI) on 127.0.0.1")
    p.add_argument("--warehouse", help="published warehouse file to serve")
    p.add_argument("--port", type=int, default=8088)
    p.add_argument("--dagster-port", type=int, default=3000)
    p.add_argument("--no-dagster", action="store_true", help="start Superset only")
    p.add_argument(
        "--dagster-write", action="store_true",
        help="Dagster UI may launch, backfill, wipe and delete (default: read-only)",
    )  # fmt: skip
    p.add_argument(
        "--reports", action="store_true",
        help="scheduled e-mail reports: Superset metadata on PostgreSQL, Redis, Celery worker + beat",
    )  # fmt: skip
    p.add_argument("--pg-port", type=int, default=5433, help="PostgreSQL port (--reports)")
    p.add_argument("--redis-port", type=int, default=6380, help="Redis port (--reports)")
    p.add_argument("--engine", choices=DBT_ENGINES,
                   help="what the dashboards read (default: settings.yml dbt.engine): duckdb, "
                        "the published warehouse file; spark-thrift, the marts of the Spark "
                        "Thrift server of settings.yml spark: (Admin only)")  # fmt: skip
    p.add_argument(
        "--print-procfile", action="store_true",
        help="print the processes serve runs (a Procfile, also written to <state>/Procfile "
        "on every start) and start nothing",
    )  # fmt: skip
    add_config_flag(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "init", help="scaffold your configuration folder: mappings and company tables"
    )
    p.add_argument("dir", help="folder to create (existing files in it are kept)")
    p.add_argument("--with-mappings", action="store_true",
                   help="also copy every shipped mapping into DIR/sources/ as a starting point")  # fmt: skip
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("mapping", help="check your mappings against landed files")
    msub = p.add_subparsers(dest="mapping_command", required=True)
    p = msub.add_parser(
        "check",
        help="per landed file, without a run: the entity that claims it, rows that would load "
        "or be quarantined and why, first typed rows, columns missing and ignored",
    )
    p.add_argument("--landing", help="landing folder (default: settings.yml paths.landing)")
    add_config_flag(p)
    p.set_defaults(func=cmd_mapping_check)

    p = sub.add_parser("quarantine", help="list quarantined rows: file, line, reason, raw text")
    p.add_argument("--data", help="raw/quarantine/manifest folder (default: data/)")
    p.add_argument("--file", metavar="GLOB", help="only files matching GLOB (path or name)")
    p.add_argument("--reason", metavar="TEXT", help="only reasons containing TEXT")
    p.add_argument("--csv", metavar="OUT", help="write the rows to the CSV file OUT")
    add_config_flag(p)
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("users", help="Superset users: add or update, list, remove")
    usub = p.add_subparsers(dest="users_command", required=True)
    p = usub.add_parser(
        "add",
        help="create a user or update an existing one (password from CRMWH_USER_PASSWORD, "
        "else prompted)",
    )
    p.add_argument("name")
    p.add_argument(
        "--role", action="append", required=True,
        help="Admin, Analyst, Executive, Finance or Manager (dashboards/security.yaml); repeatable",
    )  # fmt: skip
    p.add_argument(
        "--manager-id", help="a Manager sees the rows of this manager id (none: no rows at all)"
    )
    p.add_argument("--email", help="e-mail address (default: NAME@localhost)")
    p.set_defaults(func=cmd_users)
    p = usub.add_parser("list", help="users with their roles, manager id and last login")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_users)
    p = usub.add_parser("remove", help="delete a user (never the last active Admin)")
    p.add_argument("name")
    p.set_defaults(func=cmd_users)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
