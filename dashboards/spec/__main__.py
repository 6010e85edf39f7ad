"""Regenerate ``dashboards/bundle`` from ``dashboards/spec``: ``python -m dashboards.spec``."""

from __future__ import annotations

import sys
from pathlib import Path

from dashboards.spec.dashboards import BUNDLE

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "bundle"


def main() -> int:
    paths = BUNDLE.write(BUNDLE_DIR)
    print(f"wrote {len(paths)} files under {BUNDLE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
