"""Superset for the warehouse: install, configure, import the dashboards, serve.

Superset runs from its own virtual environment (``.venv-superset``, built from the pinned
``dashboards/server/requirements.lock`` by ``scripts/setup_superset.sh``) because its
dependency tree cannot share one environment with Dagster and dbt. This module drives it
from the outside, through its command line and HTTP, so the pipeline never imports
Superset.

Everything Superset writes lives under ``<state_dir>/superset``: the secret key, the
SQLite metadata database, the generated admin password and the server log. The
dashboards are code: YAML under ``dashboards/bundle`` with fixed UUIDs, zipped and
imported on every ``prepare`` so that git is the source of truth and re-imports update
in place. The warehouse is registered read-only with DuckDB's external access disabled,
so SQL Lab can neither write to it nor read files from the server's disk.

The modules, each importing only those listed before it: ``layout`` (file locations and
`SupersetError`), ``install`` (the virtual environment, state folder and CLI calls), ``users``
(the admin login, users and roles), ``spark_sql`` (the datasets' SQL for a Spark Thrift
server), ``bundle`` (building the dashboards bundle), ``validation``
(checks of the bundle and of ``dashboards/security.yaml``) and ``server`` (``prepare``,
``start``, ``stop``). Everything other modules use is imported from this package.
"""

from pipelines.lib.superset.bundle import (
    DATA_DOCS_PLACEHOLDER,
    DEFAULT_DATA_DOCS_URL,
    MART_SCHEMA,
    MASKED_DATABASE_NAME,
    READ_ONLY_CONNECT_ARGS,
    _virtual_tables,
    build_bundle_zip,
    dataset_tables,
    thrift_uri,
    warehouse_uri,
)
from pipelines.lib.superset.install import (
    _ensure_secret_key,
    _superset_env,
    _write_private,
    ensure_installed,
    superset_state_dir,
    venv_dir,
)
from pipelines.lib.superset.layout import (
    BUNDLE_DIR,
    CONFIG_FILE,
    DASHBOARDS_DIR,
    IMPORT_SCRIPT,
    LOCK_FILE,
    LOCK_STAMP,
    PROJECT_ROOT,
    SECURITY_FILE,
    SECURITY_SCRIPT,
    SERVER_DIR,
    SETUP_SCRIPT,
    SupersetError,
)
from pipelines.lib.superset.server import (
    ensure_port_free,
    health_ok,
    prepare,
    server_command,
    server_env,
    start,
    stop,
    wait_healthy,
)
from pipelines.lib.superset.users import (
    SupersetCredentials,
    UserSpec,
    ensure_user,
    ensure_users,
    list_users,
    remove_user,
)
from pipelines.lib.superset.validation import (
    CONTACT_COLUMNS,
    check_bundle_against_warehouse,
    validate_bundle,
    validate_security,
)

__all__ = [
    "BUNDLE_DIR",
    "CONFIG_FILE",
    "CONTACT_COLUMNS",
    "DASHBOARDS_DIR",
    "DATA_DOCS_PLACEHOLDER",
    "DEFAULT_DATA_DOCS_URL",
    "IMPORT_SCRIPT",
    "LOCK_FILE",
    "LOCK_STAMP",
    "MART_SCHEMA",
    "MASKED_DATABASE_NAME",
    "PROJECT_ROOT",
    "READ_ONLY_CONNECT_ARGS",
    "SECURITY_FILE",
    "SECURITY_SCRIPT",
    "SERVER_DIR",
    "SETUP_SCRIPT",
    "SupersetCredentials",
    "SupersetError",
    "UserSpec",
    "_ensure_secret_key",
    "_superset_env",
    "_virtual_tables",
    "_write_private",
    "build_bundle_zip",
    "check_bundle_against_warehouse",
    "dataset_tables",
    "ensure_installed",
    "ensure_port_free",
    "ensure_user",
    "ensure_users",
    "health_ok",
    "list_users",
    "prepare",
    "remove_user",
    "server_command",
    "server_env",
    "start",
    "stop",
    "superset_state_dir",
    "thrift_uri",
    "validate_bundle",
    "validate_security",
    "venv_dir",
    "wait_healthy",
    "warehouse_uri",
]
