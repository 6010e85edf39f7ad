"""One settings object, read from `settings.yml`, the environment and the command line.

It is built once where the program starts — by the CLI from its flags
(`load_settings(overrides=...)`), or by the Dagster code location
(`pipelines.definitions`) — and passed down as an argument: no module reads a
process-wide copy. Child processes (the Dagster UI, a run launched from it) receive the
same settings as `CRMWH_*` variables of their own environment (`Settings.environment`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parents[1]
_CHECKOUT = PACKAGE_DIR.parent
#: The shipped project files (settings.yml, dbt_project/, sources/, quality/, scripts/): the
#: checkout itself, or their copy inside the installed package (pyproject.toml, wheel
#: force-include), so that `pip install` + `crmwh` works outside a checkout.
INSTALLED = not (_CHECKOUT / "dbt_project" / "dbt_project.yml").is_file()
PROJECT_ROOT = PACKAGE_DIR / "_project" if INSTALLED else _CHECKOUT
SETTINGS_FILE = PROJECT_ROOT / "settings.yml"
ENV_PREFIX = "CRMWH_"


def _coerce(value: str, like: Any) -> Any:
    """Turn an environment string into the type of the default it overrides."""
    if isinstance(like, bool):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, list):
        return yaml.safe_load(value)
    return value


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        section, _, name = key[len(ENV_PREFIX) :].lower().partition("__")
        if section in raw and isinstance(raw[section], dict):
            raw[section][name] = _coerce(value, raw[section].get(name, ""))
    return raw


#: where the job builds the dbt project (settings.yml `dbt.engine`)
DBT_ENGINES = ("duckdb", "spark-thrift")


@dataclass(frozen=True)
class Settings:
    """The resolved settings. Paths are absolute.

    `root` is where relative `paths:` resolve: the checkout; installed, the folder of
    your settings file, or the working directory when the shipped one is used. `project`
    holds the shipped files read at run time (mappings, checks, the dbt project)."""

    raw: dict[str, Any] = field(repr=False)
    root: Path = PROJECT_ROOT
    file: Path | None = None  # the settings file read (passed on to child processes)
    project: Path = PROJECT_ROOT

    def _path(self, key: str) -> Path:
        p = Path(os.path.expanduser(str(self.raw["paths"][key])))
        return p if p.is_absolute() else (self.root / p)

    @property
    def landing_dir(self) -> Path:
        return self._path("landing")

    @property
    def data_dir(self) -> Path:
        return self._path("data")

    @property
    def warehouse_path(self) -> Path:
        return self._path("warehouse")

    @property
    def state_dir(self) -> Path:
        return self._path("state")

    @property
    def config_dir(self) -> Path | None:
        """The user configuration folder (`paths.config`, `--config`), None when unset."""
        value = str(self.raw["paths"].get("config") or "").strip()
        if not value:
            return None
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else (self.root / p)

    @property
    def sources_dir(self) -> Path:
        """The shipped mappings (a configuration folder's `sources/` overrides them)."""
        return self.project / "sources"

    @property
    def quality_file(self) -> Path:
        """The shipped check suites (`quality/suites.yml`)."""
        return self.project / "quality" / "suites.yml"

    @property
    def seeds_dir(self) -> Path:
        """The shipped company tables (dbt seeds; a configuration folder's `tables/`
        overrides them)."""
        return self.project / "dbt_project" / "seeds"

    @property
    def dbt_project_dir(self) -> Path:
        """The dbt project dbt runs in (it writes `target/` and `logs/` into it): the
        checkout's; installed, a copy of the shipped one under the state folder, refreshed
        when the package changes."""
        shipped = self.project / "dbt_project"
        if self.project != PROJECT_ROOT or not INSTALLED:
            return shipped
        return _project_copy(shipped, self.state_dir / "dbt_project")

    @property
    def timezone(self) -> str:
        return str(self.raw["company"]["timezone"])

    @property
    def reporting_currency(self) -> str:
        """settings.yml `company.reporting_currency`: the ISO code money is reported in."""
        return str(self.raw["company"]["reporting_currency"]).strip().upper()

    @property
    def dashboards_language(self) -> str:
        """settings.yml `dashboards.language`: the language of the dashboards and of
        Superset's interface (`ru` or `en`)."""
        from dashboards.server.formats import DEFAULT_LANGUAGE, LANGUAGES

        value = str(self.section("dashboards").get("language") or DEFAULT_LANGUAGE)
        language = value.strip().lower()
        if language not in LANGUAGES:
            raise ValueError(
                f"settings: dashboards.language {value!r} is not one of {', '.join(LANGUAGES)}"
            )
        return language

    @property
    def dbt_engine(self) -> str:
        """settings.yml `dbt.engine`: where the job builds the dbt project — `duckdb` (the
        build file, published as the served warehouse) or `spark-thrift` (the tables of the
        Spark Thrift server of `spark:`)."""
        value = str(self.section("dbt").get("engine") or "duckdb")
        engine = value.strip().lower()
        if engine not in DBT_ENGINES:
            raise ValueError(
                f"settings: dbt.engine {value!r} is not one of {', '.join(DBT_ENGINES)}"
            )
        return engine

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.raw.get(name) or {})

    @property
    def duckdb_temp_dir(self) -> Path:
        """Where DuckDB spills joins and sorts that exceed `duckdb.memory_limit`."""
        configured = str(self.section("duckdb").get("temp_directory") or "").strip()
        if not configured:
            return self.data_dir / "tmp" / "duckdb"
        p = Path(os.path.expanduser(configured))
        return p if p.is_absolute() else self.root / p

    def duckdb_pragmas(self, temp_dir: Path | None = None) -> str:
        """`set` statements applying settings.yml `duckdb:` to a connection (spilling into
        `temp_dir` when given and no `temp_directory` is configured)."""
        return duckdb_pragmas(self.duckdb_options(), temp_dir)

    def duckdb_options(self) -> dict[str, Any]:
        """settings.yml `duckdb:` with `temp_directory` absolute ("" when not configured)."""
        d = self.section("duckdb")
        configured = str(d.get("temp_directory") or "").strip()
        return {
            "memory_limit": str(d.get("memory_limit", "2GB")),
            "threads": int(d.get("threads", 2)),
            "temp_directory": str(self.duckdb_temp_dir) if configured else "",
            "default_temp_directory": str(self.duckdb_temp_dir),
        }

    def dbt_vars(self) -> dict[str, Any]:
        """Parameters handed to dbt as `--vars`, so metric logic reads the same file."""
        return {
            "timezone": self.timezone,
            "reporting_currency": self.raw["company"]["reporting_currency"],
            "country": self.raw["company"]["country"],
            "working_hours_start": self.raw["working_hours"]["start"],
            "working_hours_end": self.raw["working_hours"]["end"],
            "working_weekdays": self.raw["working_hours"]["weekdays"],
            **self.section("metrics"),
        }

    def environment(self) -> dict[str, str]:
        """These settings as the variables a child process (the Dagster UI, a run it
        launches) reads back with `load_settings`: the settings file and every path,
        absolute, so that flags given to the CLI reach it."""
        env = {"CRMWH_SETTINGS": str(self.file)} if self.file is not None else {}
        for key in self.raw.get("paths") or {}:
            value = str(self.raw["paths"][key] or "").strip()
            resolved = str(self._path(key)) if value else ""
            env[f"{ENV_PREFIX}PATHS__{key.upper()}"] = resolved
        return env


_COPIED: dict[Path, Path] = {}


def _project_copy(shipped: Path, dest: Path) -> Path:
    """`dest` holding the files of `shipped` (once per process; again when the shipped
    files changed: a new version of the package)."""
    if _COPIED.get(dest) == shipped:
        return dest
    files = sorted(p for p in shipped.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    stamp = hashlib.sha256(
        "\n".join(
            f"{p.relative_to(shipped)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files
        ).encode()
    ).hexdigest()
    marker = dest / ".crmwh-copy"
    if not (marker.is_file() and marker.read_text(encoding="utf-8") == stamp):
        for sub in ("models", "macros", "seeds", "tests", "snapshots"):
            shutil.rmtree(dest / sub, ignore_errors=True)
        for p in files:
            target = dest / p.relative_to(shipped)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)
        marker.write_text(stamp, encoding="utf-8")
    _COPIED[dest] = shipped
    return dest


def duckdb_pragmas(options: Mapping[str, Any], temp_dir: Path | None = None) -> str:
    """`set` statements for a DuckDB connection from `Settings.duckdb_options()`: spill into
    the configured `temp_directory`, else into `temp_dir`, else the default under data/."""
    configured = str(options.get("temp_directory") or "")
    if configured:
        temp = Path(configured)
    elif temp_dir is not None:
        temp = temp_dir
    else:
        temp = Path(str(options["default_temp_directory"]))
    temp.mkdir(parents=True, exist_ok=True)
    quoted = str(temp).replace("'", "''")
    return (
        f"set memory_limit = '{options.get('memory_limit', '2GB')}'; "
        f"set threads = {int(options.get('threads', 2))}; "
        f"set temp_directory = '{quoted}'"
    )


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read the settings file, apply `CRMWH_<SECTION>__<KEY>` variables of `environ` (the
    process environment by default), then `overrides` (the CLI's flags: they win)."""
    env = os.environ if environ is None else environ
    if path is None and env.get("CRMWH_SETTINGS"):
        path = Path(env["CRMWH_SETTINGS"])
    if path is None and INSTALLED and (Path.cwd() / "settings.yml").is_file():
        path = Path.cwd() / "settings.yml"  # installed: a settings file where you work
    path = (path or SETTINGS_FILE).resolve()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw = _apply_env(raw, env)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {})
        raw[section].update({k: v for k, v in values.items() if v is not None})
    if not INSTALLED:
        root = PROJECT_ROOT
    else:  # relative paths: beside your settings file, else where you work
        root = Path.cwd() if path == SETTINGS_FILE.resolve() else path.parent
    return Settings(raw=raw, root=root.resolve(), file=path)
