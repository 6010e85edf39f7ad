"""Outcomes of a raw load that was already checked, reused instead of evaluated again.

A raw load never changes once written (`_load_id`, one Parquet file per landed file), so
the outcome of a rule on it changes only when the rule or its bounds change. Every run
still checks every raw table (the latest load of each), but in a one-day increment most
tables received nothing new: their latest load is the one the previous run checked.

For each raw suite the Dagster check op keeps `<data>/checks/memo/raw__<table>.json`: the
load it checked and, per rule, a fingerprint of what was evaluated (the rule's definition,
its concrete bounds, the load and its number of files) with the outcome. On the next run:

- a rule whose fingerprint is unchanged takes the stored outcome (its details say which
  run evaluated it);
- a freshness rule is judged again against today's bound from its stored observation (the
  newest value in the load, which cannot change): its bound moves every day, its data not;
- any other rule (a new load, a changed rule, new trailing files for the volume band, a new
  stage list) is evaluated again, with GX as always.

Outcomes that carry no observation at all (an evaluation error) are never stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pipelines.lib.quality.results import Outcome, outcome_record
from pipelines.lib.quality.rules import Batch, Bound, Suite
from pipelines.lib.warehouse import checks_dir

VERSION = 2  # 2: samples of sensitive columns are stored masked
REUSED = "reused: load"  # how the details of a reused outcome begin their note


def memo_path(data_dir: Path, suite: Suite) -> Path:
    """Where the outcomes of the last checked load of `suite` are kept."""
    return checks_dir(data_dir) / "memo" / f"{suite.layer}__{suite.table}.json"


def _rejudged(b: Bound) -> bool:
    """Rules judged again from the stored observation: their bound depends on the clock."""
    return b.rule.kind == "freshness"


def fingerprint(b: Bound, batch: Batch) -> str:
    """What a stored outcome depends on: rule, bounds (but a clock-bound one), load, files."""
    r = b.rule
    what = {
        "version": VERSION,
        "rule": [r.name, r.kind, list(r.columns), r.severity, r.mostly, r.params],
        "bounds": None if _rejudged(b) else [b.min_value, b.max_value, list(b.values), b.note],
        "load": [batch.load_id, batch.files],
    }
    text = json.dumps(what, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load(path: Path, batch: Batch) -> dict[str, dict[str, Any]]:
    """Stored entries (rule name -> entry) when they are of `batch`'s load, else none."""
    if batch.load_id is None or not path.exists():
        return {}
    try:
        memo = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # unreadable: evaluate everything again and rewrite it
    if memo.get("version") != VERSION or memo.get("load_id") != batch.load_id:
        return {}
    return dict(memo.get("rules") or {})


def _parse_like(value: Any, like: Any) -> Any:
    if isinstance(value, str) and isinstance(like, dt.datetime):
        return dt.datetime.fromisoformat(value)
    if isinstance(value, str) and isinstance(like, dt.date):
        return dt.date.fromisoformat(value[:10])
    return value


def reuse(b: Bound, batch: Batch, entry: dict[str, Any] | None) -> Outcome | None:
    """The outcome of `b` from a stored entry, or None when `b` must be evaluated."""
    if not entry or entry.get("fingerprint") != fingerprint(b, batch):
        return None
    o = entry["outcome"]
    observed = json.loads(o["observed"]) if o.get("observed") is not None else None
    passed = bool(o["passed"])
    note = f"{REUSED} {batch.load_id} was checked by run {entry['run_id']}"
    if _rejudged(b):
        newest = _parse_like(observed, b.min_value)
        try:
            passed = newest is not None and newest >= b.min_value
        except TypeError:
            return None  # an observation of another type: evaluate again
        note += f"; its newest value judged again against today's bound {b.min_value}"
    details = "; ".join(x for x in (o.get("details") or "", note) if x)
    return Outcome(
        rule=b.rule,
        passed=passed,
        expectation=o["expectation"],
        element_count=o.get("element_count"),
        unexpected_count=o.get("unexpected_count"),
        unexpected_percent=o.get("unexpected_percent"),
        observed=observed,
        details=details,
    )


def _observed_nothing(o: Outcome) -> bool:
    no_counts = o.element_count is None and o.unexpected_count is None
    return not o.passed and no_counts and o.observed is None


def save(
    path: Path,
    batch: Batch,
    bounds: list[Bound],
    outcomes: list[Outcome],
    run_id: str,
    previous: dict[str, dict[str, Any]],
    evaluated: set[str],
) -> None:
    """Store the outcomes of `batch`'s load; a reused one keeps the run that evaluated it."""
    if batch.load_id is None:
        return
    rules: dict[str, dict[str, Any]] = {}
    for b, o in zip(bounds, outcomes, strict=True):
        name = b.rule.name
        if name not in evaluated:
            if name in previous:
                rules[name] = previous[name]
            continue
        if _observed_nothing(o):
            continue
        rules[name] = {
            "fingerprint": fingerprint(b, batch),
            "run_id": run_id,
            "outcome": outcome_record(o),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    memo = {"version": VERSION, "load_id": batch.load_id, "rules": rules}
    tmp.write_text(json.dumps(memo, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)
