"""PyHive's SQLAlchemy dialect (``hive://``, a Spark Thrift server) fixed for Superset.

PyHive 0.7's ``HiveCompiler.visit_column`` takes any column that compiles to text with two
dots for ``schema.table.column`` and cuts it at the first dot, and refuses three dots or
more. Superset hands a metric or calculated column to SQLAlchemy as a literal column whose
text is the whole expression, so ``percentile(x, 0.5) / 60.0`` reached Spark as
``5) / 60.0``. `patch` leaves literal columns as SQLAlchemy compiles them and keeps
PyHive's handling of real (named) columns. Loaded by ``superset_config.py``; without
PyHive installed it does nothing.
"""

from __future__ import annotations

from typing import Any


def patch() -> bool:
    """Install the fix; False when PyHive is not installed."""
    try:
        from pyhive.sqlalchemy_hive import HiveCompiler
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
    return True
