"""One settings object, read from `settings.yml` and the environment.

Every module asks this object for paths and parameters, so that nothing is hard-coded
and a deployment changes behaviour through one file (or `CRMWH_*` variables) only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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


def _apply_env(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        section, _, name = key[len(ENV_PREFIX) :].lower().partition("__")
        if section in raw and isinstance(raw[section], dict):
            raw[section][name] = _coerce(value, raw[section].get(name, ""))
    return raw


@dataclass(frozen=True)
class Settings:
    """The resolved settings. Paths are absolute."""

    raw: dict[str, Any] = field(repr=False)
    root: Path = PROJECT_ROOT

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
        return self.root / "sources"

    @property
    def seeds_dir(self) -> Path:
        """The shipped company tables (dbt seeds; a configuration folder's `tables/`
        overrides them)."""
        return self.dbt_project_dir / "seeds"

    @property
    def dbt_project_dir(self) -> Path:
        return self.root / "dbt_project"

    @property
    def timezone(self) -> str:
        return str(self.raw["company"]["timezone"])

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
        d = self.section("duckdb")
        configured = str(d.get("temp_directory") or "").strip()
        temp = temp_dir if (temp_dir is not None and not configured) else self.duckdb_temp_dir
        temp.mkdir(parents=True, exist_ok=True)
        quoted = str(temp).replace("'", "''")
        return (
            f"set memory_limit = '{d.get('memory_limit', '2GB')}'; "
            f"set threads = {int(d.get('threads', 2))}; "
            f"set temp_directory = '{quoted}'"
        )

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


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the settings file and apply `CRMWH_<SECTION>__<KEY>` overrides."""
    path = path or Path(os.environ.get("CRMWH_SETTINGS", SETTINGS_FILE))
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw = _apply_env(raw, dict(os.environ if environ is None else environ))
    return Settings(raw=raw)


@cache
def get_settings() -> Settings:
    return load_settings()
