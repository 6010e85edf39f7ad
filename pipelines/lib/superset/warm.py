"""Warm Superset's chart-data cache for the published warehouse version.

Superset's chart-data cache is keyed by the served version (`published_cache.py`), so
after a publish every chart's first request would query the new warehouse. `crmwh serve`
watches the served file and, once a new version is in place (and once at start), asks
Superset to compute every chart of every dashboard through its own warm-up endpoint
(``PUT /api/v1/chart/warm_up_cache``, the one Superset's Celery cache-warm-up task calls),
which runs the chart's saved query and stores the result under the new version's keys.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.lib.superset.api import SupersetApi


@dataclass
class WarmReport:
    charts: int = 0
    seconds: float = 0.0
    #: "dashboard / chart: reason" of the charts whose query failed
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        failed = f", {len(self.errors)} failed: {self.errors[0]}" if self.errors else ""
        return f"{self.charts} charts of the dashboards cached in {self.seconds:.1f}s{failed}"


def warm_dashboards(api: SupersetApi) -> WarmReport:
    """Every chart of every dashboard through Superset's warm-up endpoint (logged in)."""
    report = WarmReport()
    t0 = time.perf_counter()
    for dashboard in api.dashboards():
        for chart in api.charts_of(dashboard["id"]):
            status, body = api.call(
                "PUT",
                "/api/v1/chart/warm_up_cache",
                {"chart_id": chart["id"], "dashboard_id": dashboard["id"]},
            )
            report.charts += 1
            results = body.get("result") if isinstance(body, dict) else None
            error = None
            if status != 200 or not results:
                error = f"HTTP {status}"
            elif results[0].get("viz_error"):
                error = str(results[0]["viz_error"])[:200]
            if error:
                report.errors.append(
                    f"{dashboard['dashboard_title']} / {chart['slice_name']}: {error}"
                )
    report.seconds = time.perf_counter() - t0
    return report


def file_version(paths: Sequence[Path]) -> tuple:
    """What `published_cache.served_version` keys the cache by: each file's inode,
    modification time and size (None for a missing file)."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


def watch_and_warm(
    paths: Sequence[Path],
    login: Callable[[], SupersetApi],
    stopping: threading.Event,
    *,
    interval: float = 5.0,
    say: Callable[[str], None] = print,
) -> None:
    """Warm the cache now, then each time the served files become a new version that stays
    the same over one ``interval`` (a publish replaces two files, one after the other),
    until ``stopping`` is set. A failed warm-up is reported, never stops serving; the next
    publish tries again."""
    served: tuple | None = None
    seen: tuple | None = None
    first = True
    while not stopping.is_set():
        now = file_version(paths)
        if now != served and (first or now == seen):
            first = False
            served = now
            try:
                report = warm_dashboards(login())
                say(f"Cache:     {report.line()}")
            except Exception as exc:  # noqa: BLE001 - a warm-up never stops serving
                say(f"Cache:     warm-up failed ({exc}); charts compute on first open")
        seen = now
        stopping.wait(interval)
