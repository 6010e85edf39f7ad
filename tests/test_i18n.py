"""The dashboards in the reader's language and formats (fast tier: no server).

One English spec, one catalogue per language (`dashboards/i18n/<language>.yaml`), applied
when the bundle is zipped for import; the server's number locale per language and
reporting currency (`dashboards/server/formats.py`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.server import formats
from dashboards.spec import dashboards as spec
from dashboards.spec.i18n import (
    CATALOGUE_DIR,
    REPORTS_FILE,
    SQL_LABELS,
    catalogue,
    languages,
    localize,
    texts,
)
from dashboards.spec.model import CURRENCY_MARK, DATA_DOCS_URL, UNIT_FORMATS
from pipelines.lib.superset import BUNDLE_DIR, build_bundle_zip
from pipelines.lib.superset.bundle import _load_yaml_files


@pytest.fixture(scope="module")
def docs() -> dict[str, Any]:
    docs = _load_yaml_files(BUNDLE_DIR)
    docs["reports.yaml"] = yaml.safe_load(REPORTS_FILE.read_text(encoding="utf-8"))
    return docs


def test_every_language_has_a_server_locale_and_a_catalogue() -> None:
    assert languages() == ["en", *sorted(set(formats.LANGUAGES) - {"en"})]
    assert formats.DEFAULT_LANGUAGE in formats.LANGUAGES


@pytest.mark.parametrize("language", [lang for lang in languages() if lang != "en"])
def test_catalogue_translates_every_text_and_nothing_else(
    docs: dict[str, Any], language: str
) -> None:
    wanted = set(texts(docs))
    cat = catalogue(language)
    assert sorted(wanted - set(cat)) == [], "untranslated: python -m dashboards.spec --untranslated"
    assert sorted(set(cat) - wanted) == [], f"{language}.yaml: entries no dashboard uses"
    for english, translated in cat.items():
        for mark in (DATA_DOCS_URL, CURRENCY_MARK):
            assert english.count(mark) == translated.count(mark), (english, translated)
        assert english.count("**") == translated.count("**"), (english, translated)


def test_localize_writes_every_text_in_russian_and_keeps_data_values(
    docs: dict[str, Any],
) -> None:
    ru, missing = localize(docs, "ru")
    assert missing == []
    cat = catalogue("ru")
    finance = ru["dashboards/Finance_receivables_and_profitability.yaml"]
    assert finance["dashboard_title"] == cat["Finance — receivables and profitability"]
    names = [f["name"] for f in finance["metadata"]["native_filter_configuration"]]
    assert cat["As of date"] in names and "As of date" not in names
    # a text block and a chart name in the layout
    nodes = [n for n in finance["position"].values() if isinstance(n, dict) and "meta" in n]
    codes = [n["meta"]["code"] for n in nodes if n["type"] == "MARKDOWN"]
    assert codes and all(c in cat.values() for c in codes), codes
    names = {n["meta"]["sliceName"] for n in nodes if n["type"] == "CHART"}
    assert cat["Overdue by customer"] in names and "Overdue by customer" not in names
    # the aging buckets' labels are written by the dataset's SQL: translated there
    aging = ru["datasets/crm_warehouse/receivables_aging.yaml"]
    label = next(c for c in aging["columns"] if c["column_name"] == "bucket_label")
    for english in SQL_LABELS[:5]:
        assert f"'{cat[english]}'" in label["expression"], english
        assert f"'{english}'" not in label["expression"]
    # no English text of the catalogue is left anywhere in the Russian bundle
    changed = {k for k, v in cat.items() if k != v} - set(cat.values())
    assert sorted(set(texts(ru)) & changed) == []
    # nothing but text changed: same files, same UUIDs, same metrics' SQL
    assert set(ru) == set(docs)
    for rel, doc in docs.items():
        assert ru[rel].get("uuid") == doc.get("uuid"), rel
    deals = ru["datasets/crm_warehouse/deals.yaml"]
    assert [m["expression"] for m in deals["metrics"]] == [
        m["expression"] for m in docs["datasets/crm_warehouse/deals.yaml"]["metrics"]
    ]


def test_english_bundle_is_the_committed_one_with_dates_spelled_out(
    docs: dict[str, Any],
) -> None:
    en, missing = localize(docs, "en")
    assert missing == []
    assert en["dashboards/Executive_overview.yaml"] == docs["dashboards/Executive_overview.yaml"]
    table = next(d for rel, d in en.items() if rel.startswith("charts/Data_freshness_by_source"))
    assert table["params"]["table_timestamp_format"] == "%Y-%m-%d %H:%M"


def test_a_text_missing_from_the_catalogue_stays_english_and_is_reported(
    docs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = dict(catalogue("ru"))
    del cat["Won deals"]
    monkeypatch.setattr("dashboards.spec.i18n.catalogue", lambda language: cat)
    ru, missing = localize(docs, "ru")
    assert "Won deals" in missing
    chart = next(d for rel, d in ru.items() if rel.startswith("charts/Won_deals_"))
    assert chart["slice_name"] == "Won deals"


def test_bundle_zip_in_russian_names_the_currency(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.touch()
    out = build_bundle_zip(warehouse, tmp_path / "b.zip", language="ru", currency="USD")
    with zipfile.ZipFile(out) as zf:
        text = zf.read("crm_warehouse_bundle/dashboards/Executive_overview.yaml").decode()
    doc = yaml.safe_load(text)
    assert doc["dashboard_title"] == catalogue("ru")["Executive overview"]
    assert CURRENCY_MARK not in text and "$" in text


def test_number_locales() -> None:
    ru = formats.d3_format("ru", "RUB")
    assert (ru["decimal"], ru["thousands"], ru["currency"]) == (",", "\u00a0", ["", "\u00a0₽"])
    en = formats.d3_format("en", "rub")
    assert (en["decimal"], en["thousands"], en["currency"]) == (".", ",", ["₽", ""])
    assert formats.d3_format("en", "KZT")["currency"] == ["₸", ""]
    assert formats.d3_format("en", "XYZ")["currency"] == ["", "\u00a0XYZ"]
    assert formats.d3_time_format("ru")["shortMonths"][0] == "янв"
    assert formats.d3_time_format("en") == {}
    assert formats.language_of("ru_RU") == "ru" and formats.language_of(None) == "ru"
    assert formats.language_of("de") == formats.DEFAULT_LANGUAGE


def test_every_chart_value_has_its_metrics_unit() -> None:
    """One format per unit, and a chart's numbers are its metrics' format: money always
    carries the currency (d3's ``$``), a duration never more than one decimal."""
    allowed = set(UNIT_FORMATS.values())
    for ds in spec.D.ALL:
        for m in ds.metrics:
            assert m.d3format in allowed or m.name.endswith("_at"), (ds.table_name, m.name)
    for chart in spec.BUNDLE.charts():
        fmt = chart.params.get("y_axis_format") or chart.params.get("number_format")
        if fmt:
            assert fmt in allowed, (chart.title, fmt)
        for name, config in (chart.params.get("column_config") or {}).items():
            assert config["d3NumberFormat"] in allowed, (chart.title, name)


def test_report_email_in_the_dashboards_language() -> None:
    from pipelines.lib.reports import resolve_reports
    from pipelines.lib.settings import load_settings

    cat = catalogue("ru")
    ru = resolve_reports(load_settings(environ={}))[0]
    en = resolve_reports(load_settings(environ={"CRMWH_DASHBOARDS__LANGUAGE": "en"}))[0]
    assert ru["name"] == en["name"]  # the key a schedule is updated by
    assert ru["email_subject"] == cat[en["email_subject"]] != en["email_subject"]
    assert ru["description"] == cat[en["description"]]


def test_settings_language(tmp_path: Path) -> None:
    from pipelines.lib.settings import load_settings

    assert load_settings(environ={}).dashboards_language == "ru"
    env = {"CRMWH_DASHBOARDS__LANGUAGE": "EN"}
    assert load_settings(environ=env).dashboards_language == "en"
    with pytest.raises(ValueError, match="dashboards.language 'fr'"):
        _ = load_settings(environ={"CRMWH_DASHBOARDS__LANGUAGE": "fr"}).dashboards_language


def test_catalogue_files_are_utf8_mappings() -> None:
    for path in CATALOGUE_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict) and all(isinstance(v, str) for v in data.values()), path
