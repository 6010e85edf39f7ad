"""The DuckDB side of the checks: the connection, validity macros and the batch of a suite.

Checks read the raw layer through an in-memory DuckDB connection with the `raw.*` views
(nothing is written to the served warehouse), or the warehouse being built (read-only) for
staging models. INN and phone validity are SQL macros, so GX expectations and the plain-SQL
baseline evaluate exactly the same expressions, inside DuckDB.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipelines.lib.mappings import Entity
from pipelines.lib.quality.rules import RAW, Batch, FileLoad, Suite, cadence
from pipelines.lib.settings import Settings
from pipelines.lib.warehouse import create_raw_views, sql_str

_W10 = [2, 4, 10, 3, 5, 9, 4, 6, 8]
_W11 = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
_W12 = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]


def _check_digit(d: str, weights: list[int]) -> str:
    terms = " + ".join(
        f"{w} * cast(substr({d}, {i}, 1) as integer)" for i, w in enumerate(weights, 1)
    )
    return f"(({terms}) % 11 % 10)"


def _digit(d: str, i: int) -> str:
    return f"cast(substr({d}, {i}, 1) as integer)"


# Temp macros: allowed on a read-only database, gone when the connection closes.
MACROS = [
    # INN (tax id) checksum on a digits-only string: 10 digits (organisations) or 12
    # (individuals), weights as in dbt's `inn_is_valid`; all zeros is not an INN.
    f"""create or replace temp macro crmwh_inn_check(d) as case
        when d in ('0000000000', '000000000000') then false
        when length(d) = 10 then {_check_digit("d", _W10)} = {_digit("d", 10)}
        when length(d) = 12 then {_check_digit("d", _W11)} = {_digit("d", 11)}
            and {_check_digit("d", _W12)} = {_digit("d", 12)}
        else false
    end""",
    # Digits-only values skip the regex replace (the common case, and the costly part).
    """create or replace temp macro crmwh_inn_is_valid(s) as case
        when s is null then null
        when regexp_full_match(s, '[0-9]+') then crmwh_inn_check(s)
        else crmwh_inn_check(coalesce(regexp_replace(s, '[^0-9]+', '', 'g'), ''))
    end""",
    # Phone -> E.164, as dbt's `normalize_phone`: first of several numbers in a cell, an
    # extension (`доб.`, `ext`, `#`) dropped, 8XXXXXXXXXX/7XXXXXXXXXX/10 digits -> +7...,
    # `+` keeps its country code, `00` prefix -> `+`. Anything else -> null.
    """create or replace temp macro crmwh_phone_first(p) as case
        when contains(p, ',') or contains(p, ';') then trim(split_part(replace(p, ';', ','), ',', 1))
        else p
    end""",
    """create or replace temp macro crmwh_phone_digits(p) as regexp_replace(
        case when regexp_matches(p, '(?i)(доб|ext|#)') then regexp_replace(lower(p), '(доб|ext|#).*$', '')
             else p end,
        '[^0-9]+', '', 'g')""",
    """create or replace temp macro crmwh_phone_e164(p) as case when p is not null then [[case
        when d = '' then null
        when starts_with(ltrim(f), '+') and length(d) between 8 and 15 then '+' || d
        when length(d) = 11 and d[1] = '8' then '+7' || d[2:]
        when length(d) = 11 and d[1] = '7' then '+' || d
        when length(d) = 10 then '+7' || d
        when starts_with(d, '00') and length(d) between 10 and 17 then '+' || d[3:]
    end for d in [crmwh_phone_digits(f)]][1] for f in [crmwh_phone_first(p)]][1] end""",
    """create or replace temp macro crmwh_is_e164(p) as case
        when p is null then null
        else coalesce(regexp_full_match(crmwh_phone_e164(p), '\\+[1-9][0-9]{7,14}'), false)
    end""",
    # E-mail: the first of several addresses in a cell (as dbt's `normalize_email` takes
    # it) is name@domain.tld: one `@`, a dot in the domain, no spaces.
    """create or replace temp macro crmwh_email_is_valid(s) as case
        when s is null then null
        else coalesce(regexp_full_match(trim(split_part(replace(s, ';', ','), ',', 1)),
                                        '[^@\\s]+@[^@\\s]+\\.[^@\\s.]+'), false)
    end""",
    # Label key: lower case, ё = е, runs of spaces collapsed (dbt's `normalize_key`).
    """create or replace temp macro crmwh_label_key(s) as
        trim(regexp_replace(replace(lower(s), 'ё', 'е'), ' +', ' ', 'g'))""",
]


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    for sql in MACROS:
        con.execute(sql)


def raw_connection(
    data_dir: Path, entities: list[Entity], settings: Settings | None = None
) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with the `raw.*` views over the Parquet raw layer, plus the macros
    (limited by settings.yml `duckdb:` when `settings` are given)."""
    con = duckdb.connect()
    if settings is not None:
        con.execute(settings.duckdb_pragmas(Path(data_dir) / "tmp" / "duckdb"))
    create_raw_views(con, data_dir, entities)
    install_macros(con)
    return con


def warehouse_connection(path: Path, settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """Read-only connection to a built warehouse file (for staging models), plus the macros
    (limited by settings.yml `duckdb:` when `settings` are given)."""
    con = duckdb.connect(str(path), read_only=True)
    if settings is not None:
        con.execute(settings.duckdb_pragmas())
    install_macros(con)
    return con


def file_loads(con: duckdb.DuckDBPyConnection, suite: Suite) -> list[FileLoad]:
    """Loaded files of a raw table with rows, newest first: from the manifest, else lineage."""
    rows = con.execute(
        """
        select load_id, file_sha256, rows_loaded, loaded_at, partition_start, partition_end
        from raw.load_manifest
        where table_name = ? and rows_loaded > 0
        order by loaded_at desc, file_sha256
        """,
        [suite.table],
    ).fetchall()
    if not rows:  # Parquet written without a manifest (another tool, a test fixture)
        rows = con.execute(
            f"""
            select _load_id, _file_sha256, count(*), max(_loaded_at), null, null
            from {suite.relation} group by all order by 4 desc, 2
            """
        ).fetchall()
    return [FileLoad(str(a), str(b), int(c), d, cadence(s, e)) for a, b, c, d, s, e in rows]


def _relation_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    (n,) = con.execute(
        "select (select count(*) from duckdb_tables() where schema_name = $1 and table_name = $2)"
        " + (select count(*) from duckdb_views() where schema_name = $1 and view_name = $2)",
        [schema, name],
    ).fetchone()
    return bool(n)


def batch_view_name(suite: Suite) -> str:
    return f"batch__{suite.layer}__{suite.table}"


def prepare_batch(
    con: duckdb.DuckDBPyConnection, suite: Suite, now: dt.datetime | None = None
) -> Batch:
    """Create the temp view `batch__<layer>__<table>` holding the rows to check.

    Raw: the latest load with rows (every file that load brought); a blocking failure keeps
    blocking until a newer load of the table passes. Staging: the whole model.
    """
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    view = batch_view_name(suite)
    if suite.layer != RAW:
        if not _relation_exists(con, suite.schema, suite.table):
            raise LookupError(f"{suite.relation} does not exist in the warehouse being built")
        con.execute(f'create or replace temp view "{view}" as select * from {suite.relation}')
        return Batch(f'"{view}"', None, now)
    loads = file_loads(con, suite)
    if not loads:
        con.execute(f'create or replace temp view "{view}" as select * from {suite.relation}')
        return Batch(f'"{view}"', None, now, empty=True)
    latest = loads[0].load_id
    current = [f for f in loads if f.load_id == latest]
    history = tuple(f for f in loads if f.load_id != latest and f.loaded_at <= current[0].loaded_at)
    con.execute(
        f'create or replace temp view "{view}" as '
        f"select * from {suite.relation} where _load_id = {sql_str(latest)}"
    )
    known: dict[str, list[str]] = {}
    for rule in suite.rules:
        exported = rule.params.get("exported") if rule.kind == "known_values" else None
        if exported:
            known[rule.name] = _exported_values(con, str(exported))
    return Batch(
        f'"{view}"',
        latest,
        max(f.loaded_at for f in current),
        files=len(current),
        history=history,
        cadences=tuple(f.cadence for f in current),
        known_values={k: v for k, v in known.items() if v},
    )


def _exported_values(con: duckdb.DuckDBPyConnection, ref: str) -> list[str]:
    """Labels a system exports itself (OpportunityStage.csv), from its latest load; they
    replace the seed's stages of that pipeline, as dbt's `int_pipeline_stages` does."""
    table, _, column = ref.partition(".")
    rows = con.execute(
        f"""
        with t as (select * from raw."{table}"),
        latest as (select _load_id from t order by _loaded_at desc limit 1)
        select distinct "{column}" from t
        where _load_id = (select _load_id from latest) and "{column}" is not null
        """
    ).fetchall()
    return [str(r[0]) for r in rows]
