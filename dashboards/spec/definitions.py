"""Metric definitions: one source for the dbt docs and the dashboards.

Every measure a dashboard shows is defined once, as a dbt docs block
``{% docs metric_<name> %}…{% enddocs %}`` in ``dbt_project/models/marts/_metric_docs.md``.
dbt renders the blocks into its docs site (the exposures of ``_exposures.yml`` and the mart
columns that hold a metric reference them with ``doc('metric_<name>')``); the dashboards
spec reads the same file here, so a chart's description and a dataset metric's description
are the words of the dbt docs, never a second copy.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]  # the checkout, or site-packages when installed
_RELATIVE = Path("dbt_project", "models", "marts", "_metric_docs.md")
#: the checkout's file, or the copy the wheel ships under pipelines/_project/
DOCS_FILE = next(
    (p for p in (_ROOT / _RELATIVE, _ROOT / "pipelines" / "_project" / _RELATIVE) if p.is_file()),
    _ROOT / _RELATIVE,
)
_BLOCK = re.compile(r"{%-?\s*docs\s+(\w+)\s*-?%}(.*?){%-?\s*enddocs\s*-?%}", re.DOTALL)


@cache
def definitions(path: Path = DOCS_FILE) -> dict[str, str]:
    """Every docs block of ``path`` by name, its text folded onto one line."""
    text = path.read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for name, body in _BLOCK.findall(text):
        if name in out:
            raise ValueError(f"{path}: docs block {name!r} is defined twice")
        out[name] = " ".join(body.split())
    return out


def definition(name: str) -> str:
    """The text of the docs block ``metric_<name>`` (``name`` without the prefix)."""
    blocks = definitions()
    key = f"metric_{name}"
    if key not in blocks:
        raise KeyError(f"{DOCS_FILE.name}: no docs block {key!r}")
    return blocks[key]
