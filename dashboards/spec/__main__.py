"""Regenerate ``dashboards/bundle`` from ``dashboards/spec``: ``python -m dashboards.spec``.

``python -m dashboards.spec --untranslated ru`` writes nothing: it prints, as YAML ready to
paste into ``dashboards/i18n/ru.yaml``, the texts of the bundle the catalogue lacks, and
exits 1 when there are any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from dashboards.spec.dashboards import BUNDLE
from dashboards.spec.i18n import REPORTS_FILE, catalogue, texts

BUNDLE_DIR = Path(__file__).resolve().parents[1] / "bundle"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.spec")
    parser.add_argument("--untranslated", metavar="LANGUAGE", help="list texts to translate")
    args = parser.parse_args(argv)
    if args.untranslated:
        docs = {rel: yaml.safe_load(text) for rel, text in BUNDLE.files().items()}
        docs["reports.yaml"] = yaml.safe_load(REPORTS_FILE.read_text(encoding="utf-8"))
        known = catalogue(args.untranslated)
        missing = [t for t in texts(docs) if t not in known]
        if missing:
            print(
                yaml.safe_dump({t: "" for t in missing}, allow_unicode=True, width=10_000), end=""
            )
        return 1 if missing else 0
    paths = BUNDLE.write(BUNDLE_DIR)
    print(f"wrote {len(paths)} files under {BUNDLE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
