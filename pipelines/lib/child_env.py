"""Environments for long-lived child processes, built without secrets.

A server process (gunicorn running Superset, the Dagster UI, Celery) keeps the
environment it was started with for its whole life, readable in ``/proc/<pid>/environ``
by its user and root, copied into crash reports and into the environment of everything
it starts. None of them needs a password from the environment: the Superset admin's
password is applied once through stdin and kept in ``state/superset/admin_password``,
and the reports mode's database, Redis and SMTP passwords are read from private files
in ``state/reports`` by Superset's configuration. So every variable whose name says
it holds a secret, and every value that carries a password inside a URL, is left out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

#: names of variables that hold secrets (``SUPERSET_ADMIN_PASSWORD``, ``CRMWH_USER_PASSWORD``,
#: ``CRMWH_NOTIFICATIONS__SMTP_PASSWORD``, ``PGPASSWORD``, ``AWS_SECRET_ACCESS_KEY``, …)
SECRET_NAME = re.compile(
    r"PASSW(OR)?D|SECRET|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_?KEY|^PGPASS|_PASS$|_PWD$",
    re.IGNORECASE,
)
#: a password inside a URL: ``scheme://user:password@host``
URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s@:]*:[^/\s@]+@")


def is_secret(name: str, value: str) -> bool:
    """Whether the variable ``name=value`` carries a secret."""
    return bool(SECRET_NAME.search(name) or URL_WITH_PASSWORD.search(value))


def without_secrets(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) without secrets, plus ``extra``.

    ``extra`` is added as given, so a caller that must pass something (never a
    password) says so explicitly.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not is_secret(k, v)}
    env.update(extra)
    return env


@contextmanager
def scoped_environ(env: Mapping[str, str]) -> Iterator[None]:
    """``env`` added to this process's environment for the duration of the block, then
    the environment restored as it was.

    Only for libraries that read their settings from the environment and offer no
    argument for them: dagster-dbt starts dbt with a copy of this process's environment
    (``DbtCliResource.cli`` takes none of its own), and Dagster reads its event batching
    switches from ``os.environ`` while a run executes in this process."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
