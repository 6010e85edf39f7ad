"""The dashboards in a real browser: playwright-core drives Debian's Chromium.

For each language (Russian, the default, then English): imports the bundle in that
language, logs in through the login form, switches the session's interface language, opens
each of the five dashboards, waits until every chart has drawn, fails on any chart showing
an error or any failed chart-data request, checks on the rendered page that every money
value carries the currency mark and no duration shows more than one decimal, and saves one
screenshot per dashboard to ``state/screenshots/<language>/<slug>.png`` (git-ignored), so a
reviewer can look at every dashboard in both languages without starting the stack. Needs
``scripts/setup_browser.sh`` (run by ``make setup``): Chromium from apt, playwright-core
from ``tests/browser/package-lock.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dashboards.server.formats import currency_symbol
from dashboards.spec.dashboards import BUNDLE
from dashboards.spec.i18n import catalogue
from dashboards.spec.model import DAYS, MONEY
from tests.conftest import ROOT
from tests.superset_api import DASHBOARD_SLUGS, Served

BROWSER_DIR = ROOT / "tests" / "browser"
SCREENSHOTS = ROOT / "state" / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def _missing_tools() -> list[str]:
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not CHROMIUM.exists():
        missing.append(str(CHROMIUM))
    if not (BROWSER_DIR / "node_modules" / "playwright-core").exists():
        missing.append("playwright-core (npm ci in tests/browser)")
    return missing


def format_checks(language: str, currency: str = "RUB") -> dict[str, Any]:
    """What the page must show for each chart whose values carry a unit: the labels (in
    ``language``) of its money and its one-decimal (duration) values."""
    cat = catalogue(language)

    def tr(text: str) -> str:
        return cat.get(text, text)

    charts: list[dict[str, Any]] = []
    for chart in BUNDLE.charts():
        ds = chart.dataset
        units = {m.name: (m.d3format, m.verbose or m.name) for m in ds.metrics}
        units.update({c.name: (c.d3format, c.verbose or c.name) for c in ds.columns if c.d3format})
        if chart.viz_type in ("big_number_total", "big_number"):
            fmt = units[chart.params["metric"]][0]
            names, big = [chart.params["metric"]], True
        elif chart.viz_type == "table":
            names = list(chart.params.get("metrics") or chart.params.get("all_columns") or [])
            big = False
            fmt = None
        else:
            continue
        money = [tr(units[n][1]) for n in names if n in units and units[n][0] == MONEY]
        one = [tr(units[n][1]) for n in names if n in units and units[n][0] == DAYS]
        if big and fmt not in (MONEY, DAYS):
            continue
        if money or one:
            charts.append({"title": tr(chart.title), "big": big, "money": money, "oneDecimal": one})
    return {
        "charts": charts,
        "mark": currency_symbol(currency),
        "decimal": "," if language == "ru" else ".",
    }


def browse(
    base: str,
    username: str,
    password: str,
    language: str,
    shots: Path,
    tmp: Path,
    timeout_ms: int | None = None,
) -> dict[str, Any]:
    """Render every dashboard of the Superset at ``base`` in a browser session switched to
    ``language``, screenshots into ``shots`` (emptied first); the script's report.
    ``timeout_ms``: how long one dashboard may take to draw (the script's default: 120 s)."""
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    checks = tmp / f"format-checks-{language}.json"
    checks.write_text(json.dumps(format_checks(language), ensure_ascii=False), encoding="utf-8")
    env = dict(
        os.environ,
        SUPERSET_URL=base,
        SUPERSET_USER=username,
        SUPERSET_PASSWORD=password,
        SCREENSHOT_DIR=str(shots),
        CHROMIUM=str(CHROMIUM),
        LANGUAGE=language,
        FORMAT_CHECKS=str(checks),
    )
    if timeout_ms is not None:
        env["DASHBOARD_TIMEOUT_MS"] = str(timeout_ms)
    done = subprocess.run(
        ["node", str(BROWSER_DIR / "dashboards.mjs")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"{language}: exit {done.returncode}: {done.stderr[-4000:]}"
    report = json.loads(lines[-1])
    report["returncode"], report["stderr"], report["shots"] = done.returncode, done.stderr, shots
    return report


def _render(served: Served, language: str, tmp: Path) -> dict[str, Any]:
    """Import the bundle in ``language`` and render every dashboard in a browser session
    switched to it; the script's report."""
    from pipelines.lib import superset

    superset.prepare(served.warehouse, served.state, language=language)
    creds = served.creds
    return browse(
        served.base, creds.username, creds.password, language, SCREENSHOTS / language, tmp
    )


def test_browser_renders_every_dashboard_in_both_languages(served: Served, tmp_path: Path) -> None:
    from pipelines.lib import superset

    missing = _missing_tools()
    assert not missing, f"browser test needs {missing}: run scripts/setup_browser.sh"
    reports: dict[str, dict[str, Any]] = {}
    try:
        for language in ("ru", "en"):
            reports[language] = _render(served, language, tmp_path)
    finally:  # the session's other tests read the dashboards in the default language
        superset.prepare(served.warehouse, served.state)
    problems = []
    for language, report in reports.items():
        assert not [e for e in report["errors"] if e.startswith("setup")], report["errors"]
        assert {d["slug"] for d in report["dashboards"]} == DASHBOARD_SLUGS
        for d in report["dashboards"]:
            shot = Path(d["screenshot"])
            assert shot.parent == report["shots"] and shot.stem == d["slug"], shot
            assert shot.stat().st_size > 10_000, d
            assert d["charts"] > 0 and d["chartRequests"] >= d["charts"], d
            for msg in (
                [m["message"] for m in d["failedRequests"]]
                + d["errorsInPage"]
                + d["formatProblems"]
            ):
                problems.append(f"{language} {d['title']}: {msg}")
        print(language, "screenshots:", ", ".join(d["screenshot"] for d in report["dashboards"]))
    assert problems == [], "\n".join(problems)
    for language, report in reports.items():
        assert report["returncode"] == 0, (language, report["stderr"][-2000:])
        # the checks looked at values: money and durations on every dashboard but quality
        checked = {d["slug"]: d["checkedValues"] for d in report["dashboards"]}
        assert all(checked[s] > 0 for s in DASHBOARD_SLUGS - {"data-quality"}), checked
        assert sum(checked.values()) >= 50, checked
    # titles are in the language: the Russian and English dashboards differ in name only
    titles = {lang: {d["slug"]: d["title"] for d in r["dashboards"]} for lang, r in reports.items()}
    cat = catalogue("ru")
    assert all(titles["ru"][s] == cat[titles["en"][s]] for s in DASHBOARD_SLUGS), titles
    # the dashboards' default filters reach the charts on first load: one attribution
    # model on every marketing chart, one as-of snapshot on the aging charts
    requests = {d["slug"]: d["requests"] for d in reports["en"]["dashboards"]}
    marketing = [r for r in requests["marketing"] if r["chart"] != "Data as of"]
    assert marketing and all(
        any(f.startswith('attribution_model IN ["last_touch"]') for f in r["filters"])
        for r in marketing
    ), marketing
    as_of = {"Aging buckets as of the chosen date", "Overdue by customer", "Overdue by manager"}
    aging = [r for r in requests["finance"] if r["chart"] in as_of]
    assert {r["chart"] for r in aging} == as_of, requests["finance"]
    assert all(any(f.startswith("as_of IN") for f in r["filters"]) for r in aging), aging
