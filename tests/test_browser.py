"""The dashboards in a real browser: playwright-core drives Debian's Chromium.

Logs in through the login form, opens each of the five dashboards, waits until every chart
has drawn, fails on any chart showing an error or any failed chart-data request, and saves
one screenshot per dashboard to ``state/screenshots/<slug>.png`` (git-ignored). Needs
``scripts/setup_browser.sh`` (run by ``make setup``): Chromium from apt, playwright-core
from ``tests/browser/package-lock.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

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


def test_browser_renders_every_dashboard_without_errors(served: Served) -> None:
    missing = _missing_tools()
    assert not missing, f"browser test needs {missing}: run scripts/setup_browser.sh"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    env = dict(
        os.environ,
        SUPERSET_URL=served.base,
        SUPERSET_USER=served.creds.username,
        SUPERSET_PASSWORD=served.creds.password,
        SCREENSHOT_DIR=str(SCREENSHOTS),
        CHROMIUM=str(CHROMIUM),
    )
    done = subprocess.run(
        ["node", str(BROWSER_DIR / "dashboards.mjs")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"exit {done.returncode}: {done.stderr[-4000:]}"
    report = json.loads(lines[-1])
    assert not [e for e in report["errors"] if e.startswith("setup")], report["errors"]
    assert {d["slug"] for d in report["dashboards"]} == DASHBOARD_SLUGS
    problems = []
    for d in report["dashboards"]:
        shot = Path(d["screenshot"])
        assert shot.parent == SCREENSHOTS and shot.stem == d["slug"], shot
        assert shot.stat().st_size > 10_000, d
        assert d["charts"] > 0 and d["chartRequests"] >= d["charts"], d
        for msg in [m["message"] for m in d["failedRequests"]] + d["errorsInPage"]:
            problems.append(f"{d['title']}: {msg}")
    print("screenshots:", ", ".join(d["screenshot"] for d in report["dashboards"]))
    assert problems == [], "\n".join(problems)
    assert done.returncode == 0, done.stderr[-2000:]
    # the dashboards' default filters reach the charts on first load: one attribution
    # model on every marketing chart, one as-of snapshot on the aging charts
    requests = {d["slug"]: d["requests"] for d in report["dashboards"]}
    marketing = requests["marketing"]
    assert marketing and all(
        any(f.startswith('attribution_model IN ["last_touch"]') for f in r["filters"])
        for r in marketing
    ), marketing
    as_of = {"Aging buckets as of the chosen date", "Overdue by customer", "Overdue by manager"}
    aging = [r for r in requests["finance"] if r["chart"] in as_of]
    assert {r["chart"] for r in aging} == as_of, requests["finance"]
    assert all(any(f.startswith("as_of IN") for f in r["filters"]) for r in aging), aging
