"""The dashboards in the reader's language: one spec, one catalogue per language.

The spec (``dashboards/spec``) and the committed bundle are written in English. A catalogue
``dashboards/i18n/<language>.yaml`` maps each English text of the bundle to its
translation, as gettext does (the English text is the key, so a label used by ten charts is
translated once). ``localize`` applies it when the bundle is zipped for import
(``pipelines.lib.superset.build_bundle_zip``), following ``dashboards.language`` of
settings.yml: dashboard and chart titles, chart descriptions, axis titles, the labels and
descriptions of dataset columns and metrics (what legends and table headers show), filter
names and descriptions, the text blocks, the description and subject of the scheduled
e-mail reports (``dashboards/reports.yaml``, by ``pipelines.lib.reports``), and the display labels the datasets' SQL writes
(``SQL_LABELS``, e.g. aging buckets); dates in tables as the language writes them. Values of the company's data — stage, channel,
manager names — are never translated.

A text missing from the catalogue stays in English and is reported by ``localize``; the
test suite fails on any (``tests/test_dashboards.py``), and ``python -m dashboards.spec
--untranslated ru`` lists them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CATALOGUE_DIR = Path(__file__).resolve().parents[1] / "i18n"
SOURCE_LANGUAGE = "en"
#: how tables and timestamp numbers write a date and time, by language
DATETIME_FORMATS = {"ru": "%d.%m.%Y %H:%M", "en": "%Y-%m-%d %H:%M"}

#: labels the datasets' SQL writes as string literals (``'…'``) and charts show
SQL_LABELS = (
    "0 not due",
    "1 1–30 days",
    "2 31–60 days",
    "3 61–90 days",
    "4 over 90 days",
    "unassigned",
    "unknown",
)

#: (kind, path) of every translatable field: kind is the bundle folder (``charts``,
#: ``datasets``, ``dashboards``); a path is a tuple of keys, ``*`` for every list item
_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("datasets", ("description",)),
    ("datasets", ("columns", "*", "verbose_name")),
    ("datasets", ("columns", "*", "description")),
    ("datasets", ("metrics", "*", "verbose_name")),
    ("datasets", ("metrics", "*", "description")),
    ("charts", ("slice_name",)),
    ("charts", ("description",)),
    ("charts", ("params", "y_axis_title")),
    ("charts", ("params", "x_axis_title")),
    ("charts", ("params", "subheader")),
    ("charts", ("params", "compare_suffix")),
    ("dashboards", ("dashboard_title",)),
    ("dashboards", ("description",)),
    ("dashboards", ("metadata", "native_filter_configuration", "*", "name")),
    ("dashboards", ("metadata", "native_filter_configuration", "*", "description")),
    # the scheduled e-mail reports (dashboards/reports.yaml); a report's name is its key
    ("reports.yaml", ("reports", "*", "description")),
    ("reports.yaml", ("reports", "*", "email_subject")),
)
#: the scheduled e-mail reports, translated with the bundle
REPORTS_FILE = Path(__file__).resolve().parents[1] / "reports.yaml"


def languages() -> list[str]:
    """The source language and every language with a catalogue."""
    return [SOURCE_LANGUAGE, *sorted(p.stem for p in CATALOGUE_DIR.glob("*.yaml"))]


@cache
def catalogue(language: str) -> dict[str, str]:
    """English text -> text in ``language`` (empty for English)."""
    if language == SOURCE_LANGUAGE:
        return {}
    path = CATALOGUE_DIR / f"{language}.yaml"
    if not path.exists():
        raise ValueError(f"no catalogue for language {language!r}: one of {languages()}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping of English text to its translation")
    return {str(k): str(v) for k, v in data.items() if v is not None and str(v).strip()}


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[tuple[Any, str | int]]:
    """(container, key) of every value at ``path`` under ``node``."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        items = list(enumerate(node)) if isinstance(node, list) else []
    elif isinstance(node, dict) and head in node:
        items = [(head, node[head])]
    else:
        items = []
    for key, value in items:
        if rest:
            yield from _walk(value, rest)
        else:
            yield node, key


def _kind(rel: str) -> str:
    return rel.split("/", 1)[0]


def _position_texts(doc: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """(meta, key) of the texts of a dashboard's layout: header, chart names, text blocks."""
    for node in (doc.get("position") or {}).values():
        if not isinstance(node, dict):
            continue
        meta = node.get("meta")
        if not isinstance(meta, dict):
            continue
        kind = node.get("type")
        key = {"HEADER": "text", "CHART": "sliceName", "MARKDOWN": "code"}.get(str(kind))
        if key and isinstance(meta.get(key), str):
            yield meta, key


def _sql_fields(kind: str, doc: Mapping[str, Any]) -> Iterator[tuple[Any, str | int]]:
    if kind != "datasets":
        return
    if isinstance(doc.get("sql"), str):
        yield doc, "sql"
    for col in doc.get("columns") or []:
        if isinstance(col.get("expression"), str):
            yield col, "expression"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def texts(docs: Mapping[str, Any]) -> list[str]:
    """Every English text of a bundle the catalogues translate, once each, sorted."""
    found: set[str] = set()
    for rel, doc in docs.items():
        kind = _kind(rel)
        for k, path in _FIELDS:
            if k == kind:
                for container, key in _walk(doc, path):
                    value = container[key]
                    if isinstance(value, str) and value.strip():
                        found.add(value)
        if kind == "dashboards":
            found.update(meta[key] for meta, key in _position_texts(doc) if meta[key].strip())
        for container, key in _sql_fields(kind, doc):
            found.update(label for label in SQL_LABELS if _sql_literal(label) in container[key])
    return sorted(found)


def _date_formats(docs: dict[str, Any], language: str) -> None:
    """Dates and times in tables and timestamp numbers as the language writes them."""
    fmt = DATETIME_FORMATS.get(language, DATETIME_FORMATS[SOURCE_LANGUAGE])
    for rel, doc in docs.items():
        params = doc.get("params") if _kind(rel) == "charts" else None
        if not isinstance(params, dict):
            continue
        if "table_timestamp_format" in params:
            params["table_timestamp_format"] = fmt
        if params.get("force_timestamp_formatting"):
            params["time_format"] = fmt


def localize(docs: Mapping[str, Any], language: str) -> tuple[dict[str, Any], list[str]]:
    """The bundle ``docs`` (relative path -> YAML document) in ``language``, and the texts
    the catalogue lacks (left in English)."""
    out = copy.deepcopy(dict(docs))
    _date_formats(out, language)
    if language == SOURCE_LANGUAGE:
        return out, []
    cat = catalogue(language)
    missing: set[str] = set()

    def tr(value: str) -> str:
        if not value.strip():
            return value
        if value in cat:
            return cat[value]
        missing.add(value)
        return value

    for rel, doc in out.items():
        kind = _kind(rel)
        for k, path in _FIELDS:
            if k == kind:
                for container, key in list(_walk(doc, path)):
                    if isinstance(container[key], str):
                        container[key] = tr(container[key])
        if kind == "dashboards":
            for meta, key in _position_texts(doc):
                meta[key] = tr(meta[key])
        for container, key in _sql_fields(kind, doc):
            for label in SQL_LABELS:
                literal = _sql_literal(label)
                if literal in container[key]:
                    container[key] = container[key].replace(literal, _sql_literal(tr(label)))
    return out, sorted(missing)
