"""Access rules enforced inside the Superset server, below what its roles can express.

Loaded by ``superset_config.py`` (``FLASK_APP_MUTATOR`` calls ``install``;
``DB_CONNECTION_MUTATOR`` is ``connection_mutator``). Three rules:

1. **Ad-hoc SQL in charts.** Superset pastes a chart's custom SQL (an ad-hoc column,
   metric or filter, ``extras.where``/``having``) into the query it builds, next to the
   Row Level Security clause and without parentheses, so ``1=1 OR manager_id`` switches
   the manager filter off. Users without the Admin or Analyst role may send no custom SQL
   at all (a bare name of one of the dataset's columns, as the dashboards' own charts use
   for their x-axis, and one aggregate of one column, ``COUNT(*)`` or ``SUM(amount)``,
   are not custom SQL). Analysts (every row, masked datasets) may, but
   not SQL that could reach a table (``select``, ``from``, ``pivot``, ``read_csv``, ...).
   Checked twice: on the way in (``before_request``: chart data, Explore, permalinks,
   saved charts; HTTP 403 with the reason) and where the SQL is built
   (``get_sqla_query``: whatever path a query comes from, a saved chart included; HTTP
   400). Queries as chart sources (``datasource type query``) and dataset writes are for
   Admin only.
2. **SQL Lab reads the masked warehouse.** For every user but Admin, a SQL Lab query
   connects to ``<stem>.masked.duckdb`` (only the masked marts; ``pipelines.lib.masked``)
   whatever database was picked, so no SQL reaches a raw phone or e-mail.
3. **Query time limits that hold.** Superset's own SQL Lab timeout is a signal that
   works only on a main thread, and gunicorn's gthread workers run requests on others. A
   watchdog timer interrupts the DuckDB connection (``interrupt()``) when a query runs
   longer than ``SQLLAB_TIMEOUT`` (SQL Lab) or ``SUPERSET_WEBSERVER_TIMEOUT`` minus a
   margin (charts), and the query fails with a message that says so.

Only the standard library is imported at module level: the pipeline's tests load this
file without Superset installed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

ADMIN_ROLE = "Admin"
ANALYST_ROLE = "Analyst"
MASKED_SUFFIX = ".masked.duckdb"
#: seconds left to a chart query between the watchdog and gunicorn's worker timeout
CHART_TIMEOUT_MARGIN = 10

#: Requests whose parameters or body may carry chart SQL (checked for users but Admin).
GUARDED_PREFIXES = (
    "/api/v1/chart",
    "/api/v1/explore",
    "/api/v1/dashboard",
    "/api/v1/datasource",
    "/superset/explore",
    "/superset/slice",
    "/explore",
    "/datasource",
)
#: SQL Lab requests: their queries go to the masked warehouse for users but Admin.
SQLLAB_PREFIXES = ("/api/v1/sqllab", "/superset/sql_json", "/sqllab", "/superset/sqllab")

_IDENTIFIER = re.compile(r'\s*(?:"([A-Za-z_][A-Za-z0-9_]*)"|([A-Za-z_][A-Za-z0-9_]*))\s*')
#: ``COUNT(*)``, ``SUM(amount)``, ``COUNT(DISTINCT "deal_id")``: one aggregate of one column
_AGGREGATE = re.compile(
    r"\s*(?:count|sum|avg|min|max)\s*\(\s*(?:(\*)|(?:distinct\s+)?"
    r'(?:"([A-Za-z_][A-Za-z0-9_]*)"|([A-Za-z_][A-Za-z0-9_]*)))\s*\)\s*',
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING = re.compile(r"'(?:[^']|'')*'")
#: Words that let an expression read a relation, a file or the catalog, or run a statement.
_REACHING_WORDS = frozenset(
    """select from join with union intersect except values table tables pivot unpivot
    pivot_wider pivot_longer summarize describe show pragma attach detach copy export import
    install load call set reset create insert update delete drop alter use checkpoint
    vacuum execute prepare query query_table getvariable getenv current_setting glob
    sniff_csv sql_auto_complete which_secret lateral""".split()
)
_REACHING_PREFIXES = (
    "read_",
    "duckdb_",
    "pragma_",
    "parquet_",
    "sqlite_",
    "postgres_",
    "mysql_",
    "iceberg_",
    "delta_",
    "json_execute",
)
_DATASOURCE_REF = re.compile(r"\d+__(\w+)")
_MAX_DEPTH = 40


# --------------------------------------------------------------------------- SQL checks


def bare_column(expression: str) -> str | None:
    """The column name if ``expression`` is just one (plain or double-quoted), else None."""
    m = _IDENTIFIER.fullmatch(expression)
    return (m.group(1) or m.group(2)) if m else None


def plain_aggregate(expression: str) -> str | None:
    """For ``COUNT(*)`` "*", for one aggregate of one column (``SUM(amount)``) the column,
    for anything else None. Such a metric reads only the dataset's rows, which Row Level
    Security has already filtered."""
    m = _AGGREGATE.fullmatch(expression)
    return (m.group(1) or m.group(2) or m.group(3)) if m else None


def analyst_problem(expression: str) -> str | None:
    """Why an Analyst's custom SQL expression is refused, or None when it is allowed.

    Allowed: expressions over the dataset's own columns. Refused: anything with a word
    that reads a relation, file or setting (outside string literals), and backslashes,
    dollar quotes and semicolons, which would make string literals ambiguous to this check.
    """
    for char, what in (("\\", "backslash"), ("$", "dollar sign"), (";", "semicolon")):
        if char in expression:
            return f"a {what} is not allowed in custom SQL"
    body = _STRING.sub("''", expression)
    if "'" in body.replace("''", ""):
        return "unterminated string literal in custom SQL"
    body = _STRING.sub(" ", body)
    for word in _WORD.findall(body):
        low = word.lower()
        if low in _REACHING_WORDS or low.startswith(_REACHING_PREFIXES):
            return f"custom SQL may not use {word!r}: it could read another table"
    return None


def find_sql(obj: Any, depth: int = 0) -> Iterator[str]:
    """Custom SQL carried anywhere in a request or query object.

    Yields every non-empty ``sqlExpression``, ``where`` and ``having`` string, looking
    inside lists, dicts and strings that hold JSON (``form_data``, ``params``,
    ``query_context``). A structure nested deeper than any chart needs is reported as
    SQL, so it cannot hide some.
    """
    if depth > _MAX_DEPTH:
        yield "<nested too deeply to check>"
        return
    if isinstance(obj, str):
        text = obj.strip()
        if text[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                if "sqlExpression" in text:
                    yield text
                return
            yield from find_sql(parsed, depth + 1)
        elif "sqlExpression" in text:
            yield text
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("sqlExpression", "where", "having") and isinstance(value, str):
                if value.strip():
                    yield value
            else:
                yield from find_sql(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from find_sql(item, depth + 1)


def foreign_datasource(obj: Any, depth: int = 0) -> str | None:
    """A datasource type other than ``table`` referred to anywhere in ``obj``, or None."""
    if depth > _MAX_DEPTH:
        return "unknown"
    if isinstance(obj, str):
        text = obj.strip()
        if text[:1] in ("{", "["):
            try:
                return foreign_datasource(json.loads(text), depth + 1)
            except ValueError:
                return None
        return None
    if isinstance(obj, dict):
        for key, value in obj.items():
            kind = None
            if key == "datasource_type" and isinstance(value, str):
                kind = value
            elif key == "datasource" and isinstance(value, dict):
                kind = str(value.get("type", "table"))
            elif key == "datasource" and isinstance(value, str):
                m = _DATASOURCE_REF.fullmatch(value.strip())
                kind = m.group(1) if m else None
            if kind is not None and kind != "table":
                return kind
            found = foreign_datasource(value, depth + 1)
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            found = foreign_datasource(item, depth + 1)
            if found:
                return found
    return None


def sql_problem(obj: Any, roles: set[str], columns: set[str] | None = None) -> str | None:
    """Why the custom SQL in ``obj`` is refused for a user with ``roles`` (None: allowed).

    ``columns``: the dataset's column names when known; a bare name must be one of them.
    """
    if ADMIN_ROLE in roles:
        return None
    for expression in find_sql(obj):
        name = bare_column(expression) or plain_aggregate(expression)
        if name is not None and (name == "*" or columns is None or name in columns):
            continue
        if ANALYST_ROLE in roles:
            problem = analyst_problem(expression)
            if problem:
                return problem
            continue
        return (
            "custom SQL in charts and filters is not allowed for your role"
            f" (found {expression[:80]!r}); use the dataset's columns and metrics"
        )
    return None


# --------------------------------------------------------------------------- who asks


def _current_user() -> Any:
    """The user of this request or task (session cookie, API token, or Superset's
    ``override_user``), or None."""
    from flask import g, has_request_context

    user = getattr(g, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    if not has_request_context():
        return None
    try:
        from flask_login import current_user

        if current_user and current_user.is_authenticated:
            return current_user
    except Exception:  # noqa: BLE001 - no login manager: no session user
        pass
    try:
        from flask_jwt_extended import get_current_user, verify_jwt_in_request

        verify_jwt_in_request(optional=True)
        return get_current_user()
    except Exception:  # noqa: BLE001 - a bad token is the view's business (401)
        return None


def role_names(user: Any) -> set[str]:
    return {str(r.name) for r in getattr(user, "roles", None) or []}


# --------------------------------------------------------------------------- requests


def _request_payloads() -> list[Any]:
    from flask import request

    payloads: list[Any] = [dict(request.args.lists())]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        payloads.append(dict(request.form.lists()))
    elif request.is_json:
        payloads.append(request.get_json(silent=True))
    return payloads


def check_request() -> Any:
    """``before_request``: refuse chart SQL a user's role may not send (HTTP 403)."""
    from flask import jsonify, request

    path = request.path
    if not path.startswith(GUARDED_PREFIXES):
        return None
    user = _current_user()
    if user is None:
        return None  # not logged in: Superset answers 401 itself
    roles = role_names(user)
    if ADMIN_ROLE in roles:
        return None
    payloads = _request_payloads()
    kind = foreign_datasource(payloads)
    if kind:
        message = f"charts on a {kind!r} source are for administrators only"
        return jsonify(message=message, errors=[{"message": message}]), 403
    problem = sql_problem(payloads, roles)
    if problem:
        return jsonify(message=problem, errors=[{"message": problem}]), 403
    return None


def check_dataset_write() -> Any:
    """``before_request``: datasets (virtual ones are SQL over any table) are created and
    changed by administrators only."""
    from flask import jsonify, request

    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    if not request.path.startswith(("/api/v1/dataset", "/datasource/save")):
        return None
    user = _current_user()
    if user is None or ADMIN_ROLE in role_names(user):
        return None
    message = "datasets are created and changed by administrators only"
    return jsonify(message=message, errors=[{"message": message}]), 403


def _guard_sqla_query(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``ExploreMixin.get_sqla_query``: the SQL of every chart query passes here."""

    def get_sqla_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        from superset.connectors.sqla.models import SqlaTable
        from superset.exceptions import QueryObjectValidationError

        roles = role_names(_current_user())
        if ADMIN_ROLE not in roles:
            if not isinstance(self, SqlaTable):
                raise QueryObjectValidationError(
                    "charts on a SQL Lab query are for administrators only"
                )
            columns = {str(c.column_name) for c in self.columns}
            problem = sql_problem([list(args), kwargs], roles, columns)
            if problem:
                raise QueryObjectValidationError(problem)
        return original(self, *args, **kwargs)

    get_sqla_query.__wrapped__ = original  # type: ignore[attr-defined]
    return get_sqla_query


# --------------------------------------------------------------------------- SQL Lab


_local = threading.local()


def masked_database(path: str) -> str:
    """``/x/warehouse.duckdb`` -> ``/x/warehouse.masked.duckdb`` (as pipelines.lib.masked)."""
    if path.endswith(MASKED_SUFFIX):
        return path
    stem = path[: -len(".duckdb")] if path.endswith(".duckdb") else path
    return stem + MASKED_SUFFIX


def _sqllab_request() -> bool:
    from flask import has_request_context, request

    return has_request_context() and request.path.startswith(SQLLAB_PREFIXES)


def connection_mutator(
    uri: Any, params: dict[str, Any], username: Any, security_manager: Any, source: Any
) -> tuple[Any, dict[str, Any]]:
    """``DB_CONNECTION_MUTATOR``: SQL Lab of every user but Admin reads the masked file."""
    from superset.utils.core import QuerySource

    sqllab = source == QuerySource.SQL_LAB or _sqllab_request()
    _local.sqllab = sqllab
    if sqllab and ADMIN_ROLE not in role_names(_current_user()):
        if not str(uri.drivername).startswith("duckdb") or not uri.database:
            raise PermissionError("SQL Lab reads the masked warehouse only for your role")
        uri = uri.set(database=masked_database(uri.database))
    return uri, params


# --------------------------------------------------------------------------- time limits


class QueryTimeLimitExceeded(RuntimeError):
    """A query ran past its limit and was interrupted by the watchdog."""


class _Watchdog:
    """Interrupt ``cursor``'s DuckDB connection when the block runs longer than ``seconds``."""

    def __init__(self, cursor: Any, seconds: float) -> None:
        self.cursor = cursor
        self.seconds = seconds
        self.fired = False
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        try:
            self.cursor.interrupt()
        except Exception:  # noqa: BLE001 - the connection may be closing already
            pass

    def __enter__(self) -> _Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()


def _limits(app_config: Any) -> tuple[int, int]:
    sqllab = int(app_config.get("SQLLAB_TIMEOUT") or 60)
    web = int(app_config.get("SUPERSET_WEBSERVER_TIMEOUT") or 120)
    return sqllab, max(5, web - CHART_TIMEOUT_MARGIN)


def _timed(original: Callable[..., Any], sqllab_limit: int, chart_limit: int) -> Callable:
    def run(cls: Any, cursor: Any, *args: Any, **kwargs: Any) -> Any:
        sqllab = getattr(_local, "sqllab", False) or _sqllab_request()
        limit = sqllab_limit if sqllab else chart_limit
        with _Watchdog(cursor, limit) as dog:
            try:
                return original(cls, cursor, *args, **kwargs)
            except Exception as exc:
                if not dog.fired:
                    raise
                where = "SQL Lab queries" if sqllab else "chart queries"
                raise QueryTimeLimitExceeded(
                    f"The query was stopped after {limit} seconds: {where} are limited to"
                    f" {limit} seconds on this server. Narrow it down (filters, fewer"
                    " joins, a LIMIT) and run it again."
                ) from exc

    return run


def install_time_limits(app_config: Any) -> tuple[int, int]:
    """Wrap DuckDB's ``execute`` and ``fetch_data`` of Superset's engine spec with the
    watchdog; returns the (SQL Lab, chart) limits in seconds."""
    from superset.db_engine_specs.duckdb import DuckDBEngineSpec

    sqllab_limit, chart_limit = _limits(app_config)
    for name in ("execute", "fetch_data"):
        current = getattr(DuckDBEngineSpec, name).__func__
        original = getattr(current, "__crmwh_original__", current)
        wrapped = _timed(original, sqllab_limit, chart_limit)
        wrapped.__crmwh_original__ = original  # type: ignore[attr-defined]
        setattr(DuckDBEngineSpec, name, classmethod(wrapped))
    return sqllab_limit, chart_limit


# --------------------------------------------------------------------------- install


def install(app: Any) -> None:
    """Register the request checks and patch query building and execution (idempotent)."""
    from superset.models.helpers import ExploreMixin

    current = ExploreMixin.get_sqla_query
    original = getattr(current, "__wrapped__", current)
    ExploreMixin.get_sqla_query = _guard_sqla_query(original)
    install_time_limits(app.config)
    if not app.config.get("_CRMWH_GUARD_INSTALLED"):
        app.before_request(check_dataset_write)
        app.before_request(check_request)
        app.config["_CRMWH_GUARD_INSTALLED"] = True
