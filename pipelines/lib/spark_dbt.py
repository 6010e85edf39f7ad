"""`dbt` for the in-process Spark target, with the ANSI mode its profile asks for.

dbt-spark overwrites `spark.sql.ansi.enabled` with `false` in every profile's
`server_side_parameters` (for Spark 3 compatibility), and its session cursor applies those
parameters again before every statement, so neither the profile nor a `set` in a hook can
turn ANSI mode on. Spark 4 and its Thrift server run with ANSI mode on, where a failed
conversion stops the statement instead of giving null; a build that ran with it off would
hide such failures. This entry point restores the value the profile gives
(`CRMWH_SPARK_ANSI`, default true) after dbt-spark has overwritten it, then runs dbt's own
command line: `python -m pipelines.lib.spark_dbt build --target spark ...`.
"""

from __future__ import annotations

import sys

ANSI = "spark.sql.ansi.enabled"


def keep_profile_ansi_mode() -> None:
    """Make dbt-spark keep the profile's `spark.sql.ansi.enabled` instead of forcing false."""
    from dbt.adapters.spark.connections import SparkCredentials

    forced = SparkCredentials.__post_init__
    if getattr(forced, "keeps_profile_ansi_mode", False):
        return

    def post_init(self: SparkCredentials) -> None:
        wanted = {str(k): str(v) for k, v in (self.server_side_parameters or {}).items()}
        forced(self)
        if ANSI in wanted:
            self.server_side_parameters[ANSI] = wanted[ANSI]

    post_init.keeps_profile_ansi_mode = True  # type: ignore[attr-defined]
    SparkCredentials.__post_init__ = post_init  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    from dbt.cli.main import cli

    keep_profile_ansi_mode()
    try:
        cli.main(args=sys.argv[1:] if argv is None else argv, prog_name="dbt")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
