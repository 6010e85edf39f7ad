"""Superset's chart-data cache, keyed by the published warehouse version.

A publish `os.replace`s the served DuckDB file (and its masked copy) with a new file, so
the files' identity — inode, modification time and size — names the version being served.
Every key of this cache is prefixed with that identity, read (two `stat` calls) on every
access: once a new version is served, no entry cached for an older one can be read again,
whatever its timeout, and the first access that sees a new version empties the cache
(memory holds one version's results). That lets chart results be kept for a day (a daily
refresh's interval) instead of minutes without ever serving an older version.

Superset loads this module through ``superset_config`` (``CACHE_TYPE`` names its class);
the served files come from ``CRMWH_SERVED_FILES`` (paths joined by ``os.pathsep``), which
``pipelines.lib.superset.server_env`` sets. Without it (a Spark Thrift server is served)
the prefix is constant and the cache behaves as Superset's own SimpleCache.
"""

from __future__ import annotations

import os
from typing import Any

from cachelib import SimpleCache as _MemoryCache
from flask_caching.backends.base import BaseCache

SERVED_FILES_ENV = "CRMWH_SERVED_FILES"


def served_version(paths: list[str] | None = None) -> str:
    """The identity of the served files: ``inode-mtime_ns-size`` of each, ``-`` for a missing
    one, joined by ``+``."""
    if paths is None:
        paths = [p for p in os.environ.get(SERVED_FILES_ENV, "").split(os.pathsep) if p]
    parts = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}")
    return "+".join(parts) or "unversioned"


class PublishedVersionCache(BaseCache):
    """An in-process memory cache (Superset runs one gunicorn worker) whose every key is
    prefixed, once, by `served_version()`: the methods `BaseCache` builds on these (get_many,
    set_many, delete_many, ...) go through them."""

    def __init__(
        self, default_timeout: int = 300, threshold: int = 500, ignore_errors: bool = False
    ) -> None:
        super().__init__(default_timeout=default_timeout)
        self.ignore_errors = ignore_errors
        self._memory = _MemoryCache(threshold=threshold, default_timeout=default_timeout)
        self._paths = [p for p in os.environ.get(SERVED_FILES_ENV, "").split(os.pathsep) if p]
        self._version = served_version(self._paths)

    @classmethod
    def factory(cls, app: Any, config: dict, args: list, kwargs: dict) -> PublishedVersionCache:
        kwargs.update(
            threshold=config["CACHE_THRESHOLD"], ignore_errors=config["CACHE_IGNORE_ERRORS"]
        )
        return cls(*args, **kwargs)

    def _versioned(self, key: str) -> str:
        version = served_version(self._paths)
        if version != self._version:  # a publish: older entries can never be read again
            self._memory.clear()
            self._version = version
        return f"{version}/{key}"

    def get(self, key: str) -> Any:
        return self._memory.get(self._versioned(key))

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        return bool(self._memory.set(self._versioned(key), value, timeout))

    def add(self, key: str, value: Any, timeout: int | None = None) -> bool:
        return self._memory.add(self._versioned(key), value, timeout)

    def delete(self, key: str) -> bool:
        return self._memory.delete(self._versioned(key))

    def has(self, key: str) -> bool:
        return self._memory.has(self._versioned(key))

    def clear(self) -> bool:
        return self._memory.clear()

    def inc(self, key: str, delta: int = 1) -> int | None:
        return self._memory.inc(self._versioned(key), delta)

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self._memory.dec(self._versioned(key), delta)
