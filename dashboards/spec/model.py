"""Building blocks of the bundle: datasets, charts, dashboards and their YAML form.

Superset's export format is verbose (a table chart is ~80 lines of YAML, half of it a
JSON query context that must agree with the other half). Here a chart is one call, and
:func:`render` writes the files in the format ``ImportAssetsCommand`` reads.

UUIDs are fixed: derived from a stable ``key`` (never the title, which may change) with
``uuid5``, or given explicitly for objects that existed before this module. A re-import
updates objects in place by UUID, so a key must never be reused for something else.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NAMESPACE = uuid.UUID("0b6f4a8e-3c2d-4d8e-9a51-6c1f3e0d2b7a")
DATABASE_UUID = "5a0ab41e-e961-4292-a7ff-f69ced54c507"
NO_FILTER = "No filter"
#: SQL that reads the clock: a dataset using it is cached this long (seconds), not for the
#: server's default day, since its values change without a publish
READS_CLOCK = re.compile(r"\b(now\s*\(|current_date|current_timestamp|today\s*\()", re.I)
CLOCK_CACHE_TIMEOUT = 300

# --------------------------------------------------------------------------- units
# How a measure is written, by what it measures: one format per unit, so a metric reads
# the same on every chart. Money uses d3's currency format ("$"): the symbol and its side,
# the thousands and decimal marks come from the server's number locale, which
# superset_config builds from the reporting currency and the dashboards' language
# (``dashboards.spec.locale``), e.g. "1 234 567 ₽" in Russian, "₽1,234,567" in English.
MONEY = "$,.0f"
#: durations of a day or more: days with one decimal
DAYS = ",.1f"
#: durations under a day: hours with one decimal
HOURS = ",.1f"
PERCENT = ".1%"
COUNT = ",d"
#: a count shared out by an attribution model (a linear model gives a deal 0.5 to each of two
#: channels)
ATTRIBUTED = ",.1f"
#: a plain ratio (pipeline coverage: 1.25 = a quarter more than needed)
RATIO = ",.2f"
UNIT_FORMATS = {
    "money": MONEY,
    "days": DAYS,
    "hours": HOURS,
    "percent": PERCENT,
    "count": COUNT,
    "attributed": ATTRIBUTED,
    "ratio": RATIO,
}


def key_uuid(kind: str, key: str) -> str:
    """The fixed UUID of the object ``kind``/``key``."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


def slug(text: str) -> str:
    """A file name for ``text``: ASCII letters, digits and underscores."""
    out = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")
    return out or "x"


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    verbose: str | None = None
    is_dttm: bool = False
    expression: str | None = None
    description: str | None = None
    #: for a numeric column shown as is (a raw table): its unit, a key of UNIT_FORMATS
    unit: str | None = None

    @property
    def d3format(self) -> str | None:
        return UNIT_FORMATS[self.unit] if self.unit else None


@dataclass(frozen=True)
class Metric:
    name: str
    expression: str
    verbose: str | None = None
    d3format: str | None = None
    description: str | None = None


@dataclass
class Dataset:
    """A dataset on schema ``marts``: physical (``sql`` None) or virtual."""

    key: str
    table_name: str
    description: str
    columns: Sequence[Column]
    metrics: Sequence[Metric] = ()
    sql: str | None = None
    main_dttm_col: str | None = None
    uuid: str | None = None
    #: column holding the manager a row belongs to (Row Level Security); None: the
    #: dataset carries no per-manager rows
    rls_column: str | None = None
    #: exposes customers' raw phones / e-mails: only roles allowed contacts may read it
    raw_contacts: bool = False

    @property
    def id(self) -> str:
        return self.uuid or key_uuid("dataset", self.key)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"dataset {self.table_name}: no column {name!r}")

    def has(self, name: str) -> bool:
        return any(c.name == name for c in self.columns)

    def reads_clock(self) -> bool:
        """Its SQL, a metric or a calculated column reads the current time."""
        texts = [self.sql or ""] + [m.expression for m in self.metrics]
        texts += [c.expression or "" for c in self.columns]
        return any(READS_CLOCK.search(text) for text in texts)

    def to_yaml(self) -> dict[str, Any]:
        return {
            "table_name": self.table_name,
            "main_dttm_col": self.main_dttm_col,
            "description": self.description,
            "default_endpoint": None,
            "offset": 0,
            "cache_timeout": CLOCK_CACHE_TIMEOUT if self.reads_clock() else None,
            "catalog": None,
            "schema": "marts",
            "sql": self.sql,
            "params": None,
            "template_params": None,
            "filter_select_enabled": True,
            "fetch_values_predicate": None,
            "extra": None,
            "normalize_columns": False,
            "always_filter_main_dttm": False,
            "uuid": self.id,
            "metrics": [
                {
                    "metric_name": m.name,
                    "verbose_name": m.verbose,
                    "metric_type": None,
                    "expression": m.expression,
                    "description": m.description,
                    "d3format": m.d3format,
                    "currency": None,
                    "extra": None,
                    "warning_text": None,
                }
                for m in self.metrics
            ],
            "columns": [
                {
                    "column_name": c.name,
                    "verbose_name": c.verbose,
                    "is_dttm": c.is_dttm,
                    "is_active": True,
                    "type": c.type,
                    "advanced_data_type": None,
                    "groupby": True,
                    "filterable": True,
                    "expression": c.expression,
                    "description": c.description,
                    "python_date_format": None,
                    "extra": None,
                }
                for c in self.columns
            ],
            "version": "1.0.0",
            "database_uuid": DATABASE_UUID,
        }


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Where:
    """A simple filter of a chart: ``col op val`` (``val`` unused for unary ops)."""

    col: str
    op: str
    val: Any = None

    def adhoc(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "clause": "WHERE",
            "expressionType": "SIMPLE",
            "operator": self.op,
            "subject": self.col,
        }
        if self.op not in {"IS NULL", "IS NOT NULL", "IS TRUE", "IS FALSE"}:
            out["comparator"] = self.val
        return out

    def query(self) -> dict[str, Any]:
        out: dict[str, Any] = {"col": self.col, "op": self.op}
        if self.op not in {"IS NULL", "IS NOT NULL", "IS TRUE", "IS FALSE"}:
            out["val"] = self.val
        return out


# --------------------------------------------------------------------------- charts


@dataclass
class Chart:
    """One chart: ``params`` for the browser, ``queries`` for the saved query context."""

    key: str
    title: str
    dataset: Dataset
    viz_type: str
    description: str
    params: dict[str, Any]
    query: dict[str, Any]
    #: temporal column the dashboard's period filter applies to (None: not filtered)
    time_col: str | None
    uuid: str | None = None

    @property
    def id(self) -> str:
        return self.uuid or key_uuid("chart", self.key)

    def query_context(self) -> str:
        base = {
            "filters": [],
            "extras": {"having": "", "where": ""},
            "applied_time_extras": {},
            "columns": [],
            "metrics": [],
            "orderby": [],
            "annotation_layers": [],
            "row_limit": 1000,
            "series_limit": 0,
            "order_desc": True,
            "url_params": {},
            "custom_params": {},
            "custom_form_data": {},
            "post_processing": [],
        }
        base.update(self.query)
        ctx = {
            "datasource": {"id": 0, "type": "table"},
            "force": False,
            "queries": [base],
            "result_format": "json",
            "result_type": "full",
        }
        return json.dumps(ctx, indent=2, ensure_ascii=False) + "\n"

    def to_yaml(self) -> dict[str, Any]:
        return {
            "slice_name": self.title,
            "description": self.description,
            "certified_by": None,
            "certification_details": None,
            "viz_type": self.viz_type,
            "params": {"viz_type": self.viz_type, **self.params},
            "query_context": self.query_context(),
            "cache_timeout": None,
            "uuid": self.id,
            "version": "1.0.0",
            "dataset_uuid": self.dataset.id,
        }


def _filters(
    time_col: str | None, where: Iterable[Where], sql_where: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Adhoc filters (params), query filters and the extra WHERE of a chart."""
    adhoc: list[dict[str, Any]] = []
    query: list[dict[str, Any]] = []
    if time_col:
        tr = Where(time_col, "TEMPORAL_RANGE", NO_FILTER)
        adhoc.append(tr.adhoc())
        query.append(tr.query())
    for w in where:
        adhoc.append(w.adhoc())
        query.append(w.query())
    if sql_where:
        adhoc.append({"clause": "WHERE", "expressionType": "SQL", "sqlExpression": sql_where})
    return adhoc, query, f"({sql_where})" if sql_where else ""


def value_format(ds: Dataset, metrics: Sequence[str]) -> str:
    """The format of a chart's values: the one unit its metrics share.

    A chart never sets its own number format: a metric reads the same everywhere, and an
    axis never mixes money with counts.
    """
    formats = {m.d3format for m in ds.metrics if m.name in metrics}
    if len(formats) != 1 or None in formats:
        raise ValueError(
            f"dataset {ds.table_name}: metrics {list(metrics)} do not share one unit"
            f" ({sorted(map(str, formats))})"
        )
    return str(formats.pop())


def explain(what: str, ds: Dataset, metrics: Sequence[str]) -> str:
    """A chart's description: what it shows (``what``), then the definition of each of its
    metrics, the words of the dbt docs (the metric's description, from
    ``dbt_project/models/marts/_metric_docs.md``)."""
    parts = [what.strip()] if what.strip() else []
    for name in metrics:
        text = next((m.description for m in ds.metrics if m.name == name), None)
        if text and text not in parts:
            verbose = next(m.verbose or m.name for m in ds.metrics if m.name == name)
            parts.append(f"{verbose}: {text}" if len(metrics) > 1 else text)
    return "\n\n".join(parts)


def _column_config(ds: Dataset, names: Iterable[str]) -> dict[str, Any]:
    """Per-column number formats of a table: each metric's and each unit column's own."""
    formats = {m.name: m.d3format for m in ds.metrics}
    formats.update({c.name: c.d3format for c in ds.columns})
    return {n: {"d3NumberFormat": formats[n]} for n in names if formats.get(n)}


def _check_refs(ds: Dataset, metrics: Iterable[str], columns: Iterable[str]) -> None:
    known_m = {m.name for m in ds.metrics}
    for m in metrics:
        if m not in known_m:
            raise KeyError(f"dataset {ds.table_name}: no metric {m!r}")
    for c in columns:
        ds.column(c)


def _chart_query(
    ds: Dataset,
    metrics: Sequence[str],
    columns: Sequence[str],
    time_col: str | None,
    where: Sequence[Where],
    sql_where: str | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The checks and filters every chart shares: ``metrics`` and the columns it reads
    (``columns``, the ``where`` columns, ``time_col``) must exist in ``ds``; returns the
    adhoc filters (params) and the start of the query (its filters and extra WHERE), to
    which the chart adds its own keys."""
    _check_refs(ds, metrics, [*columns, *[w.col for w in where], *([time_col] if time_col else [])])
    adhoc, flt, extra_where = _filters(time_col, where, sql_where)
    return adhoc, {"filters": flt, "extras": {"having": "", "where": extra_where}}


#: the comparison a big number with a trend shows, by time grain
COMPARE_SUFFIX = {"P1M": "vs previous month", "P1W": "vs previous week", "P1D": "vs previous day"}


def big_number(
    key: str,
    title: str,
    ds: Dataset,
    metric: str,
    *,
    description: str,
    time_col: str | None = None,
    where: Sequence[Where] = (),
    sql_where: str | None = None,
    subheader: str = "",
    trend: str | None = None,
    timestamp: bool = False,
    uuid: str | None = None,
) -> Chart:
    """A single number: the total over the period (``big_number_total``), or, with
    ``trend`` (a time grain such as ``P1M``), the latest ``time_col`` period with its change
    against the one before and a trend line of the period (``big_number``)."""
    adhoc, query = _chart_query(ds, [metric], [], time_col, where, sql_where)
    params: dict[str, Any] = {
        "metric": metric,
        "adhoc_filters": adhoc,
        "header_font_size": 0.4,
        "subheader_font_size": 0.15,
        "subheader": subheader,
        "y_axis_format": "" if timestamp else value_format(ds, [metric]),
        "time_format": "smart_date",
    }
    query.update({"metrics": [metric], "row_limit": 1})
    description = explain(description, ds, [metric])
    if timestamp:
        params.update({"force_timestamp_formatting": True, "time_format": "%d.%m.%Y %H:%M"})
        params.pop("y_axis_format")
    if trend is None:
        return Chart(key, title, ds, "big_number_total", description, params, query, time_col, uuid)
    if time_col is None or not ds.column(time_col).is_dttm:
        raise ValueError(f"{key}: a trend needs a temporal time_col")
    params.update(
        {
            "x_axis": time_col,
            "time_grain_sqla": trend,
            "compare_lag": 1,
            "compare_suffix": COMPARE_SUFFIX[trend],
            "show_timestamp": True,
            "show_trend_line": True,
            "start_y_axis_at_zero": True,
            "rolling_type": "None",
            "aggregation": "LAST_VALUE",
            "header_font_size": 0.35,
            "subheader_font_size": 0.125,
            "time_format": "%b %Y" if trend == "P1M" else "smart_date",
        }
    )
    column = {
        "columnType": "BASE_AXIS",
        "sqlExpression": time_col,
        "label": time_col,
        "expressionType": "SQL",
        "timeGrain": trend,
    }
    query.update(
        {
            "columns": [column],
            "row_limit": 10000,
            "post_processing": _series_post_processing(time_col, [metric], []),
        }
    )
    return Chart(key, title, ds, "big_number", description, params, query, time_col, uuid)


def table(
    key: str,
    title: str,
    ds: Dataset,
    *,
    description: str,
    groupby: Sequence[str],
    metrics: Sequence[str],
    order_by: str | None = None,
    ascending: bool = False,
    time_col: str | None = None,
    where: Sequence[Where] = (),
    sql_where: str | None = None,
    row_limit: int = 1000,
    page_length: int = 0,
    uuid: str | None = None,
) -> Chart:
    """An aggregated table: ``metrics`` by ``groupby``, sorted by ``order_by``."""
    order = order_by or (metrics[0] if metrics else groupby[0])
    adhoc, query = _chart_query(ds, metrics, groupby, time_col, where, sql_where)
    params: dict[str, Any] = {
        "query_mode": "aggregate",
        "groupby": list(groupby),
        "metrics": list(metrics),
        "all_columns": [],
        "percent_metrics": [],
        "adhoc_filters": adhoc,
        "order_desc": not ascending,
        "row_limit": row_limit,
        "server_page_length": page_length or 10,
        "table_timestamp_format": "smart_date",
        "show_cell_bars": True,
        "color_pn": True,
        "allow_rearrange_columns": False,
        "column_config": _column_config(ds, [*groupby, *metrics]),
    }
    if order in metrics:
        params["timeseries_limit_metric"] = order
    query.update(
        {
            "columns": list(groupby),
            "metrics": list(metrics),
            "orderby": [[order, ascending]],
            "row_limit": row_limit,
            "order_desc": not ascending,
        }
    )
    description = explain(description, ds, metrics)
    return Chart(key, title, ds, "table", description, params, query, time_col, uuid)


def raw_table(
    key: str,
    title: str,
    ds: Dataset,
    *,
    description: str,
    columns: Sequence[str],
    order_by: Sequence[tuple[str, bool]] = (),
    time_col: str | None = None,
    where: Sequence[Where] = (),
    sql_where: str | None = None,
    row_limit: int = 500,
    uuid: str | None = None,
) -> Chart:
    """A list of rows (table in raw mode)."""
    adhoc, query = _chart_query(
        ds, [], [*columns, *[c for c, _ in order_by]], time_col, where, sql_where
    )
    params = {
        "query_mode": "raw",
        "groupby": [],
        "metrics": [],
        "all_columns": list(columns),
        "order_by_cols": [json.dumps([c, asc]) for c, asc in order_by],
        "adhoc_filters": adhoc,
        "row_limit": row_limit,
        "server_page_length": 10,
        "table_timestamp_format": "smart_date",
        "show_cell_bars": False,
        "allow_rearrange_columns": False,
        "column_config": _column_config(ds, columns),
    }
    query.update(
        {
            "columns": list(columns),
            "orderby": [[c, asc] for c, asc in order_by],
            "row_limit": row_limit,
        }
    )
    return Chart(key, title, ds, "table", description, params, query, time_col, uuid)


def _series_post_processing(
    x: str, metrics: Sequence[str], groupby: Sequence[str]
) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = [
        {
            "operation": "pivot",
            "options": {
                "index": [x],
                "columns": list(groupby),
                "aggregates": {m: {"operator": "mean"} for m in metrics},
                "drop_missing_columns": False,
            },
        }
    ]
    if groupby and len(metrics) == 1:
        ops.append(
            {
                "operation": "rename",
                "options": {"columns": {metrics[0]: None}, "level": 0, "inplace": True},
            }
        )
    ops.append({"operation": "flatten"})
    return ops


def timeseries(
    key: str,
    title: str,
    ds: Dataset,
    *,
    description: str,
    x: str,
    metrics: Sequence[str],
    groupby: Sequence[str] = (),
    kind: str = "bar",
    grain: str | None = "P1M",
    where: Sequence[Where] = (),
    sql_where: str | None = None,
    stack: bool = False,
    y_title: str = "",
    period_filter: bool = True,
    uuid: str | None = None,
) -> Chart:
    """Metrics over time (``x`` temporal) as bars or lines, one series per group."""
    time_col = x if period_filter else None
    adhoc, query = _chart_query(ds, metrics, [x, *groupby], time_col, where, sql_where)
    if not ds.column(x).is_dttm:
        raise ValueError(f"{key}: x axis {x!r} is not temporal; use category_bar")
    viz = {"bar": "echarts_timeseries_bar", "line": "echarts_timeseries_line"}[kind]
    params: dict[str, Any] = {
        "x_axis": x,
        "time_grain_sqla": grain,
        "metrics": list(metrics),
        "groupby": list(groupby),
        "adhoc_filters": adhoc,
        "row_limit": 10000,
        "order_desc": True,
        "truncate_metric": True,
        "show_legend": True,
        "legendType": "scroll",
        "legendOrientation": "top",
        "rich_tooltip": True,
        "x_axis_time_format": "%b %Y" if grain == "P1M" else "smart_date",
        "y_axis_format": value_format(ds, metrics),
        "y_axis_title": y_title,
        "color_scheme": "supersetColors",
        "orientation": "vertical",
    }
    if stack:
        params["stack"] = "Stack"
    if kind == "line":
        params["markerEnabled"] = True
    column: dict[str, Any] = {
        "columnType": "BASE_AXIS",
        "sqlExpression": x,
        "label": x,
        "expressionType": "SQL",
    }
    if grain:
        column["timeGrain"] = grain
    query.update(
        {
            "columns": [column, *groupby],
            "series_columns": list(groupby),
            "metrics": list(metrics),
            "orderby": [[metrics[0], False]] if groupby else [],
            "row_limit": 10000,
            "post_processing": _series_post_processing(x, metrics, groupby),
        }
    )
    description = explain(description, ds, metrics)
    return Chart(key, title, ds, viz, description, params, query, time_col, uuid)


def category_bar(
    key: str,
    title: str,
    ds: Dataset,
    *,
    description: str,
    x: str,
    metrics: Sequence[str],
    groupby: Sequence[str] = (),
    time_col: str | None = None,
    where: Sequence[Where] = (),
    sql_where: str | None = None,
    sort_by_x: bool = True,
    stack: bool = False,
    horizontal: bool = False,
    y_title: str = "",
    uuid: str | None = None,
) -> Chart:
    """Bars over a categorical ``x`` (stages, buckets, reasons, managers)."""
    adhoc, query = _chart_query(ds, metrics, [x, *groupby], time_col, where, sql_where)
    params: dict[str, Any] = {
        "x_axis": x,
        "metrics": list(metrics),
        "groupby": list(groupby),
        "adhoc_filters": adhoc,
        "row_limit": 1000,
        "order_desc": True,
        "x_axis_sort": x if sort_by_x else metrics[0],
        "x_axis_sort_asc": sort_by_x,
        "xAxisForceCategorical": True,
        "xAxisLabelRotation": 30 if not horizontal else 0,
        "orientation": "horizontal" if horizontal else "vertical",
        "truncate_metric": True,
        "show_legend": True,
        "legendType": "scroll",
        "legendOrientation": "top",
        "show_value": not stack,
        "rich_tooltip": True,
        "y_axis_format": value_format(ds, metrics),
        "y_axis_title": y_title,
        "color_scheme": "supersetColors",
    }
    if stack:
        params["stack"] = "Stack"
    column = {"columnType": "BASE_AXIS", "sqlExpression": x, "label": x, "expressionType": "SQL"}
    query.update(
        {
            "columns": [column, *groupby],
            "series_columns": list(groupby),
            "metrics": list(metrics),
            "orderby": [[x, True]] if sort_by_x else [[metrics[0], False]],
            "post_processing": _series_post_processing(x, metrics, groupby),
        }
    )
    description = explain(description, ds, metrics)
    return Chart(
        key, title, ds, "echarts_timeseries_bar", description, params, query, time_col, uuid
    )


def pie(
    key: str,
    title: str,
    ds: Dataset,
    *,
    description: str,
    groupby: Sequence[str],
    metric: str,
    time_col: str | None = None,
    where: Sequence[Where] = (),
    sql_where: str | None = None,
    uuid: str | None = None,
) -> Chart:
    """Shares of ``metric`` by ``groupby`` (a donut)."""
    adhoc, query = _chart_query(ds, [metric], groupby, time_col, where, sql_where)
    params = {
        "groupby": list(groupby),
        "metric": metric,
        "adhoc_filters": adhoc,
        "row_limit": 100,
        "sort_by_metric": True,
        "color_scheme": "supersetColors",
        "show_labels": True,
        "label_type": "key_percent",
        "number_format": value_format(ds, [metric]),
        "donut": True,
        "show_legend": True,
        "legendType": "scroll",
        "legendOrientation": "top",
        "outerRadius": 70,
        "innerRadius": 35,
    }
    query.update(
        {
            "columns": list(groupby),
            "metrics": [metric],
            "orderby": [[metric, False]],
            "row_limit": 100,
        }
    )
    description = explain(description, ds, [metric])
    return Chart(key, title, ds, "pie", description, params, query, time_col, uuid)


# --------------------------------------------------------------------------- dashboards


@dataclass(frozen=True)
class NativeFilter:
    """A dashboard filter. ``column`` None with kind ``time``: the period filter.

    Applies to every chart whose dataset has ``column`` (for the period filter: every
    chart with a period column); charts without it are excluded from its scope, so a
    filter never silently does nothing to a chart that claims to be filtered.
    """

    key: str
    name: str
    description: str
    kind: str = "select"  # select | time
    column: str | None = None
    dataset: Dataset | None = None
    multi: bool = True
    required: bool = False
    default: Sequence[Any] | None = None
    first_item_desc: bool = False  # default to the greatest value (e.g. latest as-of date)
    only: Sequence[str] | None = None  # chart keys the filter is limited to


@dataclass(frozen=True)
class Markdown:
    """A text element of a dashboard (Superset's MARKDOWN component), one row of its own.

    ``DATA_DOCS_URL`` in the text is replaced when the bundle is zipped for import
    (``pipelines.lib.superset.build_bundle_zip``), because the address is per install.
    """

    key: str
    text: str
    height: int = 12


DATA_DOCS_URL = "__DATA_DOCS_URL__"
#: replaced by the reporting currency's symbol when the bundle is zipped for import
CURRENCY_MARK = "__CURRENCY__"


@dataclass
class Dashboard:
    key: str
    title: str
    slug: str
    description: str
    #: (chart or text block, width of 12, height)
    rows: Sequence[Sequence[tuple[Chart | Markdown, int, int]]]
    filters: Sequence[NativeFilter] = ()
    uuid: str | None = None
    #: text elements above the charts (each a full-width row)
    notes: Sequence[Markdown] = ()

    @property
    def id(self) -> str:
        return self.uuid or key_uuid("dashboard", self.key)

    @property
    def charts(self) -> list[Chart]:
        return [c for row in self.rows for c, _, _ in row if isinstance(c, Chart)]

    def to_yaml(self, chart_ids: dict[str, int]) -> dict[str, Any]:
        position: dict[str, Any] = {
            "DASHBOARD_VERSION_KEY": "v2",
            "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
            "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
            "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": self.title}},
        }
        rows = [(f"ROW-{n.key}", [(n, 12, n.height)]) for n in self.notes]
        rows += [(f"ROW-{i}", list(row)) for i, row in enumerate(self.rows, start=1)]
        for row_id, items in rows:
            position["GRID_ID"]["children"].append(row_id)
            children = []
            for item, width, height in items:
                meta: dict[str, Any] = {"width": width, "height": height}
                if isinstance(item, Markdown):
                    kind, node_id = "MARKDOWN", f"MARKDOWN-{item.key}"
                    meta["code"] = item.text
                else:
                    kind, node_id = "CHART", f"CHART-{item.key}"
                    meta.update(
                        {"chartId": chart_ids[item.id], "uuid": item.id, "sliceName": item.title}
                    )
                children.append(node_id)
                position[node_id] = {
                    "type": kind,
                    "id": node_id,
                    "children": [],
                    "parents": ["ROOT_ID", "GRID_ID", row_id],
                    "meta": meta,
                }
            position[row_id] = {
                "type": "ROW",
                "id": row_id,
                "children": children,
                "parents": ["ROOT_ID", "GRID_ID"],
                "meta": {"background": "BACKGROUND_TRANSPARENT"},
            }
        return {
            "dashboard_title": self.title,
            "description": None,
            "css": "",
            "slug": self.slug,
            "certified_by": None,
            "certification_details": None,
            "published": True,
            "uuid": self.id,
            "position": position,
            "metadata": {
                "color_scheme": "supersetColors",
                "refresh_frequency": 0,
                "cross_filters_enabled": False,
                "expanded_slices": {},
                "label_colors": {},
                "shared_label_colors": [],
                "timed_refresh_immune_slices": [],
                "default_filters": "{}",
                "native_filter_configuration": [
                    self._filter_yaml(f, chart_ids) for f in self.filters
                ],
            },
            "version": "1.0.0",
        }

    def _in_scope(self, flt: NativeFilter, chart: Chart) -> bool:
        if flt.only is not None and chart.key not in flt.only:
            return False
        if flt.kind == "time":
            return chart.time_col is not None
        assert flt.column is not None
        return chart.dataset.has(flt.column)

    def _filter_yaml(self, flt: NativeFilter, chart_ids: dict[str, int]) -> dict[str, Any]:
        charts = self.charts
        excluded = sorted({chart_ids[c.id] for c in charts if not self._in_scope(flt, c)})
        in_scope = sorted({chart_ids[c.id] for c in charts if self._in_scope(flt, c)})
        default_mask: dict[str, Any] = {"extraFormData": {}, "filterState": {}, "ownState": {}}
        if flt.default is not None:
            default_mask["extraFormData"] = {
                "filters": [{"col": flt.column, "op": "IN", "val": list(flt.default)}]
            }
            default_mask["filterState"] = {"value": list(flt.default)}
        out: dict[str, Any] = {
            "id": f"NATIVE_FILTER-{flt.key}",
            "name": flt.name,
            "filterType": "filter_time" if flt.kind == "time" else "filter_select",
            "type": "NATIVE_FILTER",
            "targets": [{}]
            if flt.kind == "time"
            else [{"column": {"name": flt.column}, "datasetUuid": flt.dataset.id}],  # type: ignore[union-attr]
            "controlValues": {"enableEmptyFilter": flt.required}
            if flt.kind == "time"
            else {
                "enableEmptyFilter": flt.required,
                "defaultToFirstItem": flt.first_item_desc,
                "multiSelect": flt.multi,
                "searchAllOptions": False,
                "inverseSelection": False,
            },
            "defaultDataMask": default_mask,
            "cascadeParentIds": [],
            "scope": {"rootPath": ["ROOT_ID"], "excluded": excluded},
            "chartsInScope": in_scope,
            "description": flt.description,
        }
        if flt.first_item_desc:
            # charts wait for the first value instead of loading unfiltered first
            out["requiredFirst"] = True
            out["sortMetric"] = None
            out["controlValues"]["sortAscending"] = False
        return out


# --------------------------------------------------------------------------- render


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def dump(doc: dict[str, Any], header: str = "") -> str:
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + text


@dataclass
class Bundle:
    """Datasets and dashboards (with their charts); ``databases/`` and ``metadata.yaml``
    are hand-written and not generated."""

    datasets: Sequence[Dataset]
    dashboards: Sequence[Dashboard]

    def charts(self) -> list[Chart]:
        seen: dict[str, Chart] = {}
        for d in self.dashboards:
            for c in d.charts:
                seen.setdefault(c.id, c)
        return list(seen.values())

    def files(self) -> dict[str, str]:
        """Relative path -> YAML text of every file of the bundle."""
        files: dict[str, str] = {}
        header = "# Generated by `python -m dashboards.spec` from dashboards/spec: edit there.\n"
        for ds in self.datasets:
            files[f"datasets/crm_warehouse/{ds.table_name}.yaml"] = dump(ds.to_yaml(), header)
        charts = self.charts()
        chart_ids = {c.id: i for i, c in enumerate(charts, start=1)}
        for c in charts:
            files[f"charts/{slug(c.title)}_{c.id[:8]}.yaml"] = dump(c.to_yaml(), header)
        for d in self.dashboards:
            files[f"dashboards/{slug(d.title)}.yaml"] = dump(d.to_yaml(chart_ids), header)
        return files

    def write(self, root: Path) -> list[Path]:
        """Write the bundle under ``root``, removing generated files no longer produced."""
        files = self.files()
        written = []
        for kind in ("datasets", "charts", "dashboards"):
            for old in (root / kind).rglob("*.yaml") if (root / kind).exists() else []:
                if old.relative_to(root).as_posix() not in files:
                    old.unlink()
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
            written.append(path)
        return written
