"""The dashboards bundle: the YAML under ``dashboards/bundle`` zipped for import, with the
warehouse and its masked copy registered read-only (DuckDB external access disabled), or a
Spark Thrift server's schema ``marts`` in their place (the datasets' SQL transpiled to Spark
SQL, `spark_sql`), and the Data Docs address filled in; the tables a dataset reads (`dataset_tables`, also for a virtual
dataset's SQL); and the bundle's checksum that the prepare stamp records.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from dashboards.server.formats import DEFAULT_CURRENCY, DEFAULT_LANGUAGE, currency_symbol
from dashboards.spec.i18n import localize
from pipelines.lib.masked import masked_path
from pipelines.lib.superset.layout import BUNDLE_DIR, SupersetError
from pipelines.lib.superset.spark_sql import spark_dataset

log = logging.getLogger(__name__)

MART_SCHEMA = "marts"
#: The second registered database: the masked copy of the warehouse (``pipelines.lib.masked``)
MASKED_DATABASE_NAME = "CRM warehouse (masked)"


def _load_yaml_files(root: Path) -> dict[str, Any]:
    """All YAML files of a bundle, keyed by path relative to the bundle root."""
    docs: dict[str, Any] = {}
    for path in sorted(root.rglob("*.y*ml")):
        rel = path.relative_to(root).as_posix()
        docs[rel] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return docs


def warehouse_uri(warehouse: Path) -> str:
    """SQLAlchemy URI of the warehouse: ``duckdb:///`` + the absolute path."""
    return f"duckdb:///{Path(warehouse).resolve()}"


def thrift_uri(host: str, port: int, user: str, schema: str = MART_SCHEMA) -> str:
    """SQLAlchemy URI of a Spark Thrift server's schema for Superset: PyHive's ``hive://``
    dialect (Superset's Spark SQL / Hive engine specs), SASL PLAIN as ``user``."""
    return f"hive://{quote(user, safe='')}@{host}:{int(port)}/{schema}"


#: DuckDB options forced on the registered warehouse whatever the YAML says: read-only
#: (the pipeline swaps in new builds; Superset must never write or lock it for writing)
#: and no external access (no read_csv('/etc/passwd'), ATTACH, INSTALL from SQL Lab).
READ_ONLY_CONNECT_ARGS: dict[str, Any] = {
    "read_only": True,
    "config": {"enable_external_access": False},
}


#: Where Superset serves the GX Data Docs, behind its login (``web_security.py``).
DEFAULT_DATA_DOCS_URL = "/crmwh/data-docs/"
#: Placeholder for that address in the dashboards' markdown (``dashboards.spec.model``).
DATA_DOCS_PLACEHOLDER = "__DATA_DOCS_URL__"
#: Placeholder for the reporting currency's symbol in the dashboards' markdown.
CURRENCY_PLACEHOLDER = "__CURRENCY__"


def build_bundle_zip(
    warehouse: Path,
    dest: Path,
    bundle_dir: Path = BUNDLE_DIR,
    *,
    data_docs_url: str = DEFAULT_DATA_DOCS_URL,
    language: str = DEFAULT_LANGUAGE,
    currency: str = DEFAULT_CURRENCY,
    spark_uri: str | None = None,
) -> Path:
    """Zip the YAML bundle for import, pointing its database at ``warehouse``.

    The committed YAML holds a placeholder URI, because the warehouse path differs per
    machine; here it becomes ``duckdb:///<absolute path>`` with read-only engine params.
    Likewise the Data Docs link of the dashboards becomes ``data_docs_url``.
    ``metadata.yaml`` is stamped ``type: assets`` for Superset's assets importer. Titles,
    labels and descriptions are written in ``language`` (``dashboards.spec.i18n``); a
    text its catalogue lacks stays in English and is logged, never a reason to stop. The
    text blocks name the reporting currency ``currency`` by its symbol.

    ``spark_uri`` (`thrift_uri`): the dashboards read a Spark Thrift server instead of
    ``warehouse``: the warehouse database is registered with that URI (no DuckDB connect
    arguments), the masked copy is left out (it is a DuckDB file; SQL Lab of roles other
    than Admin refuses a database that is not DuckDB, ``access_guard.py``), and every
    dataset's SQL, metric and calculated column is transpiled to Spark SQL (`spark_dataset`).
    """
    if not re.fullmatch(r"(https?://|/)[^\s()<>\[\]]*", data_docs_url):
        raise SupersetError(
            f"data docs URL {data_docs_url!r} is neither an http(s) address nor a path"
        )
    docs, untranslated = localize(_load_yaml_files(bundle_dir), language)
    if untranslated:
        log.warning(
            "dashboards: %d texts have no %s translation and stay in English: %s",
            len(untranslated),
            language,
            "; ".join(untranslated[:5]),
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, doc in docs.items():
            masked = (
                rel.startswith("databases/") and doc.get("database_name") == MASKED_DATABASE_NAME
            )
            if spark_uri is not None and masked:
                continue
            if rel.startswith("databases/"):
                doc = dict(doc)
                extra = dict(doc.get("extra") or {})
                engine_params = dict(extra.get("engine_params") or {})
                if spark_uri is not None:
                    doc["sqlalchemy_uri"] = spark_uri
                    engine_params.pop("connect_args", None)
                else:
                    doc["sqlalchemy_uri"] = warehouse_uri(
                        masked_path(warehouse) if masked else warehouse
                    )
                    connect_args = json.loads(json.dumps(READ_ONLY_CONNECT_ARGS))
                    engine_params["connect_args"] = connect_args
                extra["engine_params"] = engine_params
                doc["extra"] = extra
                doc["allow_dml"] = False
                doc["allow_file_upload"] = False
            elif rel == "metadata.yaml":
                doc = {**doc, "type": "assets"}
            elif rel.startswith("datasets/") and spark_uri is not None:
                doc = spark_dataset(doc)
            text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
            if rel.startswith("dashboards/"):
                text = text.replace(DATA_DOCS_PLACEHOLDER, data_docs_url)
                text = text.replace(CURRENCY_PLACEHOLDER, currency_symbol(currency))
            zf.writestr(f"crm_warehouse_bundle/{rel}", text)
    data = buf.getvalue()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


_SQL_TABLE_RE = re.compile(r"\b(?:from|join)\s+((?:\"?\w+\"?\.){0,2}\"?\w+\"?)", re.IGNORECASE)
_SQL_CTE_RE = re.compile(r"(?:\bwith|,)\s*(\w+)\s+as\s*\(", re.IGNORECASE)
_SQL_COMMENT_RE = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_SQL_STRING_RE = re.compile(r"'(?:[^']|'')*'")


def _virtual_tables(sql: str) -> list[str]:
    """Tables a virtual dataset's SQL reads (``from``/``join`` targets), unquoted.

    Names the SQL defines itself as common table expressions are not tables; comments
    and string literals are ignored so that neither hides nor invents a table.
    """
    text = _SQL_STRING_RE.sub("''", _SQL_COMMENT_RE.sub(" ", sql))
    ctes = {name.lower() for name in _SQL_CTE_RE.findall(text)}
    tables = [m.group(1).replace('"', "").lower() for m in _SQL_TABLE_RE.finditer(text)]
    return [t for t in tables if t not in ctes]


def dataset_tables(doc: Mapping[str, Any]) -> list[str]:
    """The mart tables (``marts.<name>``) a dataset YAML reads, physical or virtual."""
    if doc.get("sql"):
        return [t.rpartition(".")[2] for t in _virtual_tables(str(doc["sql"]))]
    return [str(doc.get("table_name", "")).lower()]


def _bundle_hash(bundle_dir: Path = BUNDLE_DIR) -> str:
    h = hashlib.sha256()
    for path in sorted(bundle_dir.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(bundle_dir).as_posix().encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()
