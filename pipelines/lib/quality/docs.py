"""GX Data Docs: a static HTML site of the suites and their latest validations.

Each check op runs in its own ephemeral GX context, so the suites and validation results the
site is rendered from are kept as JSON under `<data_docs>/.gx/` (generated, never committed);
every op stores its result there and re-renders its own pages plus the index, which then
lists every table's validations. Only the last `KEEP_RUNS` validations per suite are kept.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from pipelines.lib.quality.rules import Suite

KEEP_RUNS = 10
SITE = "local_site"


def configure(config: Any, docs_dir: Path) -> None:
    """Point a context config's suite and validation stores, and its site, at `docs_dir`."""
    stores = docs_dir / ".gx"
    config.stores["expectations_store"] = {
        "class_name": "ExpectationsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(stores / "expectations"),
        },
    }
    config.stores["validation_results_store"] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(stores / "validations"),
        },
    }
    config.data_docs_sites = {
        SITE: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }


def store_and_build(
    context: Any, suite: Suite, result: Any, batch_id: str, run_name: str, run_time: dt.datetime
) -> Path:
    """Keep `result`, drop validations older than the last KEEP_RUNS, render, return index."""
    store = context.validation_results_store
    suite_key = ExpectationSuiteIdentifier(name=suite.name)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_key,
        run_id=RunIdentifier(run_name=run_name, run_time=run_time.replace(tzinfo=dt.UTC)),
        batch_identifier=batch_id,
    )
    store.set(key, result)
    mine = [k for k in store.list_keys() if k.expectation_suite_identifier.name == suite.name]
    mine.sort(key=lambda k: k.run_id.run_time, reverse=True)
    for old in mine[KEEP_RUNS:]:
        store.remove_key(old)
    urls = context.build_data_docs(site_names=[SITE], resource_identifiers=[key, suite_key])
    return Path(str(urls.get(SITE, "")).removeprefix("file://"))
