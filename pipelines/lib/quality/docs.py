"""GX Data Docs: a static HTML site of the suites and their latest validations.

Each check op runs in its own ephemeral GX context, so the suites and validation results the
site is rendered from are kept as JSON under `<data_docs>/.gx/` (generated, never committed);
every op stores its result there and re-renders its own pages. The index page, which lists
every table's validations, reads every kept validation (up to `KEEP_RUNS` per suite), so a
run of `crmwh run` builds it once at its end (`build_index`) rather than once per op; a run
launched elsewhere (the Dagster UI) lacks the run tag `DOCS_INDEX_TAG` and so rebuilds it per op.

GX's page views make a new Jinja environment per page, so every page recompiled the same
templates (2,050 compilations for 41 suites, 12.5 s of the 18.5 s the site took on the demo).
The site is configured with the views below, which share one in-process bytecode cache: each
template is compiled once per process.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import shutil
from pathlib import Path
from typing import Any

from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

from pipelines.lib.quality.rules import Suite

KEEP_RUNS = 10
SITE = "local_site"


class _ProcessBytecodeCache(BytecodeCache):
    """Compiled Jinja templates kept in memory for the life of the process."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_BYTECODE = _ProcessBytecodeCache()


class PageView(DefaultJinjaPageView):
    """GX's page view, with its templates compiled once per process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _BYTECODE


class IndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view, with its templates compiled once per process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _BYTECODE


MASKED_MARK = "masked-samples-v1"  # under `.gx/`: every kept validation has masked samples


def drop_unmasked(docs_dir: Path) -> None:
    """Delete, once, the validations kept by a version that stored samples unmasked, with
    their rendered pages (the next runs store and render masked ones; the index is rebuilt
    from what is kept). A site without the mark in `.gx/` is such a site."""
    stores = docs_dir / ".gx"
    mark = stores / MASKED_MARK
    if mark.exists():
        return
    stores.mkdir(parents=True, exist_ok=True)
    with (stores / ".masking.lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # check ops of one run may start together
        try:
            if mark.exists():
                return
            for old in (stores / "validations", docs_dir / "validations"):
                shutil.rmtree(old, ignore_errors=True)
            mark.write_text("validation results kept here mask sensitive columns\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _view(cls: type) -> dict[str, str]:
    return {"module_name": __name__, "class_name": cls.__name__}


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
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "view": _view(IndexPageView),
            },
            "site_section_builders": {
                "expectations": {"view": _view(PageView)},
                "validations": {"view": _view(PageView)},
                "profiling": "None",  # no profiling results are ever stored
            },
        }
    }


def store_and_build(
    context: Any,
    suite: Suite,
    result: Any,
    batch_id: str,
    run_name: str,
    run_time: dt.datetime,
    build_index: bool = True,
) -> Path:
    """Keep `result`, drop validations older than the last KEEP_RUNS, render its pages (and
    the index unless `build_index` is false), return the index page's path."""
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
    urls = context.build_data_docs(
        site_names=[SITE], resource_identifiers=[key, suite_key], build_index=build_index
    )
    return Path(str(urls.get(SITE, "")).removeprefix("file://"))


def build_index(context: Any) -> Path:
    """Render only the index page of the site (from every kept validation); return its path.

    GX renders every page when given no resource identifiers, so it is given one that matches
    no stored suite: no page is re-rendered, the index is.
    """
    nothing = ExpectationSuiteIdentifier(name="__index_only__")
    urls = context.build_data_docs(site_names=[SITE], resource_identifiers=[nothing])
    return Path(str(urls.get(SITE, "")).removeprefix("file://"))
