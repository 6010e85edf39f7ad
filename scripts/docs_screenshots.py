"""Copy the browser test's screenshots into `docs/screenshots/<language>/`, scaled down.

`tests/test_browser.py` saves a full-size screenshot of every dashboard in every language
under `state/screenshots/` (git-ignored). This keeps a reviewable copy in the repository:
1200 px wide, 128 colours (a dashboard is flat colour and text), about 0.2 MB each.
Run with the Superset environment's Python, which has Pillow:

    .venv-superset/bin/python scripts/docs_screenshots.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "state" / "screenshots"
TARGET = ROOT / "docs" / "screenshots"
WIDTH = 1200
COLOURS = 128


def main() -> int:
    shots = sorted(SOURCE.glob("*/*.png"))
    if not shots:
        print(f"no screenshots under {SOURCE}: run tests/test_browser.py first", file=sys.stderr)
        return 1
    for path in shots:
        image = Image.open(path).convert("RGB")
        height = round(image.height * WIDTH / image.width)
        small = image.resize((WIDTH, height), Image.LANCZOS).quantize(COLOURS)
        out = TARGET / path.parent.name / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        small.save(out, optimize=True)
        print(f"{out.relative_to(ROOT)}  {out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
