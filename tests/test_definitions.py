"""Metric definitions: the dbt docs blocks of ``_metric_docs.md`` are the one source of the
dbt docs (exposures, mart columns) and of the dashboards' descriptions."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from dashboards.spec import datasets as D
from dashboards.spec.dashboards import DASHBOARDS
from dashboards.spec.definitions import DOCS_FILE, definition, definitions
from dashboards.spec.model import Chart
from tests.conftest import ROOT, dbt_command

MARTS = ROOT / "dbt_project" / "models" / "marts"
EXPOSURES = MARTS / "_exposures.yml"
DOC_REF = re.compile(r"""{{\s*doc\(\s*['"](metric_\w+)['"]\s*\)\s*}}""")
OPENED = re.compile(r"{%-?\s*docs\s+(\w+)")
#: the dashboard (Dashboard.key) each exposure of _exposures.yml stands for
EXPOSED = {
    "executive_overview": "executive",
    "marketing_channels": "marketing",
    "sales_funnel_and_managers": "sales",
    "finance_receivables_and_profitability": "finance",
    "data_quality_and_freshness": "quality",
}
#: a sentence ends with a full stop followed by a capital letter (or the text's end)
SENTENCE_END = re.compile(r"\.(?:\s+(?=[A-Z(])|$)")


def _fold(text: str) -> str:
    return " ".join(text.split())


def _model_ymls() -> list[Path]:
    return sorted(MARTS.glob("*/_*__models.yml"))


def test_every_block_is_a_short_plain_definition() -> None:
    """Every block opened is parsed (none lost to a typo in its tags), is named
    metric_<name>, and holds one or two plain sentences: no link, no Jinja, no
    heading or list."""
    blocks = definitions()
    assert OPENED.findall(DOCS_FILE.read_text(encoding="utf-8")) == list(blocks)
    assert len(blocks) > 50
    for name, text in blocks.items():
        assert re.fullmatch(r"metric_[a-z0-9]+(_[a-z0-9]+)*", name), name
        assert text.endswith("."), name
        assert not re.search(r"\]\(|https?://|{{|{%|^#|^- ", text), name
        assert 1 <= len(SENTENCE_END.findall(text)) <= 2, (name, text)
    assert definition("win_rate") == blocks["metric_win_rate"]
    with pytest.raises(KeyError, match="metric_no_such_measure"):
        definition("no_such_measure")


def _block_of() -> dict[str, str]:
    """Block name by its text (the text a metric's description holds)."""
    blocks = definitions()
    by_text = {text: name for name, text in blocks.items()}
    assert len(by_text) == len(blocks), "two blocks with the same text"
    return by_text


def test_every_dataset_metric_is_defined_by_a_block_and_every_block_used() -> None:
    """A dataset metric's description is a block's text (``definition``), named after the
    metric, with a qualifier only where the same name means something else elsewhere."""
    block_of = _block_of()
    used: set[str] = set()
    for ds in D.ALL:
        for metric in ds.metrics:
            block = block_of.get(metric.description or "")
            assert block, f"{ds.table_name}.{metric.name}: description is no docs block"
            assert block.startswith(f"metric_{metric.name}"), (ds.table_name, metric.name, block)
            used.add(block)
    assert set(definitions()) - used == set(), "docs blocks no dataset metric uses"


def _chart_metrics(chart: Chart) -> set[str]:
    names = [chart.params.get("metric"), *chart.params.get("metrics", [])]
    names += chart.query.get("metrics", [])
    return {n if isinstance(n, str) else n.get("label") for n in names if n}


def test_each_exposure_lists_the_measures_its_dashboard_shows() -> None:
    """An exposure's description lists, with doc(), exactly the blocks of the metrics the
    charts of its dashboard show."""
    block_of = _block_of()
    dashboards = {d.key: d for d in DASHBOARDS}
    exposures = yaml.safe_load(EXPOSURES.read_text(encoding="utf-8"))["exposures"]
    assert {e["name"] for e in exposures} == set(EXPOSED)
    for exposure in exposures:
        shown: set[str] = set()
        for row in dashboards[EXPOSED[exposure["name"]]].rows:
            for chart, *_ in row:
                if not isinstance(chart, Chart):
                    continue
                metrics = {m.name: m for m in chart.dataset.metrics}
                for name in _chart_metrics(chart):
                    shown.add(block_of[metrics[name].description or ""])
        listed = DOC_REF.findall(exposure["description"])
        assert len(listed) == len(set(listed)), exposure["name"]
        assert set(listed) == shown, exposure["name"]


def test_a_block_defined_twice_is_refused(tmp_path: Path) -> None:
    docs = tmp_path / "docs.md"
    docs.write_text(
        "{% docs metric_x %}One.{% enddocs %}\n{% docs metric_x %}Two.{% enddocs %}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="defined twice"):
        definitions(docs)


def test_dbt_references_only_existing_blocks() -> None:
    """Every doc('metric_…') of the marts' yml names a block; every exposure lists its
    dashboard's measures with them."""
    blocks = definitions()
    for path in [EXPOSURES, *_model_ymls()]:
        for name in DOC_REF.findall(path.read_text(encoding="utf-8")):
            assert name in blocks, f"{path.name}: no docs block {name}"
    for exposure in yaml.safe_load(EXPOSURES.read_text(encoding="utf-8"))["exposures"]:
        assert DOC_REF.findall(exposure["description"]), exposure["name"]


@pytest.fixture(scope="module")
def parsed_manifest(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The manifest of `dbt parse` (no warehouse: the sqlfluff target), written apart."""
    base = tmp_path_factory.mktemp("dbt_parse")
    env = dict(os.environ, DBT_LOG_PATH=str(base / "logs"), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    cmd = dbt_command(["parse", "--target", "lint"], base / "target")
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"dbt parse failed:\n{out.stdout[-4000:]}\n{out.stderr[-2000:]}"
    return json.loads((base / "target" / "manifest.json").read_text(encoding="utf-8"))


def test_dbt_renders_the_blocks_in_exposures_and_columns(parsed_manifest: dict) -> None:
    """dbt renders doc() in the exposures' descriptions and in the mart columns that
    hold a measure, with the very text the dashboards read."""
    blocks = definitions()
    rendered = {e["name"]: e["description"] for e in parsed_manifest["exposures"].values()}
    for exposure in yaml.safe_load(EXPOSURES.read_text(encoding="utf-8"))["exposures"]:
        text = _fold(rendered[exposure["name"]])
        assert "doc(" not in text, exposure["name"]
        for name in DOC_REF.findall(exposure["description"]):
            assert _fold(blocks[name]) in text, (exposure["name"], name)
    nodes = {n["name"]: n for n in parsed_manifest["nodes"].values()}
    referenced = 0
    for path in _model_ymls():
        for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
            for column in model.get("columns", []):
                ref = DOC_REF.fullmatch(column.get("description", "").strip())
                if ref:
                    got = nodes[model["name"]]["columns"][column["name"]]["description"]
                    assert _fold(got) == blocks[ref.group(1)], (model["name"], column["name"])
                    referenced += 1
    assert referenced >= 20
