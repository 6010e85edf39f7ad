"""PyHive's SQLAlchemy dialect (``hive://``, a Spark Thrift server) fixed for Superset.

PyHive 0.7's ``HiveCompiler.visit_column`` takes any column that compiles to text with two
dots for ``schema.table.column`` and cuts it at the first dot, and refuses three dots or
more. Superset hands a metric or calculated column to SQLAlchemy as a literal column whose
text is the whole expression, so ``percentile(x, 0.5) / 60.0`` reached Spark as
``5) / 60.0``. `patch` leaves literal columns as SQLAlchemy compiles them and keeps
PyHive's handling of real (named) columns.

Superset opens a Thrift session for every query (no connection pool), several at once
while a dashboard loads, and a Spark Thrift server whose sessions share one
``hive.downloaded.resources.dir`` (each session deletes it when it closes) now and then
refuses to open one ("Couldn't create directory …"; 1 in 160 opened 8 at a time here). No
query has run when ``OpenSession`` fails, so `patch` also makes the dialect try again, up to
`OPEN_ATTEMPTS` times. Loaded by ``superset_config.py``; without PyHive installed it does
nothing.
"""

from __future__ import annotations

import time
from typing import Any

#: attempts to open a Thrift session that the server refused
OPEN_ATTEMPTS = 4


def patch() -> bool:
    """Install the fix; False when PyHive is not installed."""
    try:
        from pyhive.exc import OperationalError
        from pyhive.sqlalchemy_hive import HiveCompiler, HiveDialect
    except ImportError:
        return False
    if getattr(HiveCompiler.visit_column, "_crmwh_literal_columns", False):
        return True
    original = HiveCompiler.visit_column
    base = HiveCompiler.__mro__[1].visit_column  # SQLAlchemy's own compiler

    def visit_column(self: Any, column: Any, *args: Any, **kwargs: Any) -> str:
        if getattr(column, "is_literal", False):
            return base(self, column, *args, **kwargs)
        return original(self, column, *args, **kwargs)

    visit_column._crmwh_literal_columns = True  # type: ignore[attr-defined]
    HiveCompiler.visit_column = visit_column

    def connect(self: Any, *cargs: Any, **cparams: Any) -> Any:
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            try:
                return self.dbapi.connect(*cargs, **cparams)
            except OperationalError as exc:  # PyHive closed the transport already
                if attempt == OPEN_ATTEMPTS or "TOpenSessionResp" not in str(exc):
                    raise
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    HiveDialect.connect = connect
    return True
