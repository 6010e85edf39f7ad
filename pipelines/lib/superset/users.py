"""Superset's users and roles: the admin login (given by ``SUPERSET_ADMIN_PASSWORD`` or
generated once and stored mode 600; weak passwords refused) written into the metadata database,
and the named users with the roles of ``dashboards/security.yaml``, created, listed and removed
through ``apply_security.py`` inside Superset's environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.lib.superset.install import (
    _metadata_key,
    _run_superset,
    _tail,
    _write_private,
    superset_state_dir,
)
from pipelines.lib.superset.layout import SECURITY_FILE, SECURITY_SCRIPT, SupersetError

#: Passwords that ship in docs and tutorials; never accepted for the admin.
_WEAK_PASSWORDS = {"admin", "password", "changeme", "superset", "general"}


@dataclass(frozen=True)
class SupersetCredentials:
    """The admin login the CLI shows the user.

    ``generated`` is true when no ``SUPERSET_ADMIN_PASSWORD`` was given and the password
    was generated once and stored in ``password_file`` (mode 600); print it then, and
    point at the file rather than echoing an operator-chosen password.
    """

    username: str
    password: str = field(repr=False)
    generated: bool
    password_file: Path | None


def _admin_credentials(sdir: Path) -> SupersetCredentials:
    """The admin from ``SUPERSET_ADMIN_USERNAME``/``_PASSWORD``, else a generated one."""
    username = os.environ.get("SUPERSET_ADMIN_USERNAME", "").strip() or "admin"
    env_password = os.environ.get("SUPERSET_ADMIN_PASSWORD", "")
    if env_password:
        if len(env_password) < 8 or env_password.lower() in _WEAK_PASSWORDS:
            raise SupersetError(
                "SUPERSET_ADMIN_PASSWORD is too weak (at least 8 characters, not a default)"
            )
        return SupersetCredentials(username, env_password, generated=False, password_file=None)
    password_file = sdir / "admin_password"
    if password_file.exists() and password_file.read_text(encoding="utf-8").strip():
        password = password_file.read_text(encoding="utf-8").strip()
    else:
        password = secrets.token_urlsafe(18)
        _write_private(password_file, password + "\n")
    return SupersetCredentials(username, password, generated=True, password_file=password_file)


def _password_digest(username: str, password: str, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", f"{username}\0{password}".encode(), salt, 200_000).hex()


def _ensure_admin(sdir: Path, creds: SupersetCredentials) -> None:
    """Create the admin once; re-apply the password only when the chosen one changed.

    The password goes through stdin, not argv, so it never shows in ``ps``. A digest of
    the last applied password (never the password) is kept so a changed
    ``SUPERSET_ADMIN_PASSWORD`` takes effect without a reset on every start.
    """
    key = _metadata_key()
    applied_file = sdir / ("admin_password.applied" if key == "sqlite" else f"admin.{key}.applied")
    salt_hex, _, old_digest = (
        applied_file.read_text(encoding="utf-8").strip().partition(":")
        if applied_file.exists()
        else ("", "", "")
    )
    salt = bytes.fromhex(salt_hex) if salt_hex else secrets.token_bytes(16)
    digest = _password_digest(creds.username, creds.password, salt)
    if digest == old_digest:
        return
    twice = f"{creds.password}\n{creds.password}\n"
    out = _run_superset(
        [
            "superset",
            "fab",
            "create-admin",
            "--username",
            creds.username,
            "--firstname",
            "CRM",
            "--lastname",
            "Admin",
            "--email",
            f"{creds.username}@localhost",
        ],
        sdir,
        stdin=twice,
        what="superset fab create-admin",
    )
    if "already exists" in out:
        _run_superset(
            ["superset", "fab", "reset-password", "--username", creds.username],
            sdir,
            stdin=twice,
            what="superset fab reset-password",
        )
    elif "created" not in out:
        raise SupersetError(f"superset fab create-admin did not create the user:\n{_tail(out)}")
    _write_private(applied_file, f"{salt.hex()}:{digest}\n")


@dataclass(frozen=True)
class UserSpec:
    """One Superset user for ``ensure_users``: ``roles`` are names from ``security.yaml``
    (or ``Admin``); ``manager_id`` gives the user that manager's rows."""

    username: str
    password: str = field(repr=False)
    roles: tuple[str, ...]
    email: str | None = None
    manager_id: str | None = None


def ensure_users(state_dir: Path, users: Iterable[UserSpec]) -> None:
    """Create or update many Superset users in one Superset process.

    Starting Superset's Python costs seconds, a user milliseconds, so callers with several
    users pass them together. Every password is checked here and every entry (roles,
    duplicates) inside Superset before the first user is applied. The passwords go
    through stdin as JSON, never on the command line. Run ``prepare`` first (the roles
    must exist).
    """
    users = list(users)
    names = [u.username for u in users]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SupersetError(f"users listed twice: {', '.join(twice)}")
    for user in users:
        if len(user.password) < 8 or user.password.lower() in _WEAK_PASSWORDS:
            raise SupersetError(f"password for {user.username} is too weak")
    if not users:
        return
    payload = [
        {
            "username": u.username,
            "email": u.email or f"{u.username}@localhost",
            "roles": list(u.roles),
            "manager_id": u.manager_id or None,
            "password": u.password,
        }
        for u in users
    ]
    what = f"create user {names[0]}" if len(names) == 1 else f"create {len(names)} users"
    _run_superset(
        ["python", str(SECURITY_SCRIPT), "add-users", str(SECURITY_FILE)],
        superset_state_dir(state_dir),
        stdin=json.dumps(payload),
        what=what,
    )


def ensure_user(
    state_dir: Path,
    username: str,
    password: str,
    roles: Collection[str],
    *,
    email: str | None = None,
    manager_id: str | None = None,
) -> None:
    """Create or update a Superset user with ``roles`` (names from ``security.yaml``).

    With ``manager_id`` the user also gets a personal role whose Row Level Security
    filter shows them that manager's rows (deals, customers, calls, invoices); without
    one, a Manager sees no rows at all. The password goes through stdin. Run ``prepare``
    first (the roles must exist). For several users, ``ensure_users`` is one process.
    """
    ensure_users(
        state_dir, [UserSpec(username, password, tuple(roles), email=email, manager_id=manager_id)]
    )


def list_users(state_dir: Path) -> list[dict[str, Any]]:
    """Superset's users: ``username``, ``email``, ``active``, ``roles`` (of
    ``security.yaml``), ``manager_id`` (from the personal role) and ``last_login``."""
    sdir = superset_state_dir(state_dir)
    out = _run_superset(
        ["python", str(SECURITY_SCRIPT), "users", str(SECURITY_FILE)], sdir, what="list users"
    )
    for line in reversed(out.splitlines()):  # Superset may log before the JSON line
        if line.startswith("["):
            return json.loads(line)
    raise SupersetError(f"list users printed no list:\n{_tail(out)}")


def remove_user(state_dir: Path, username: str) -> None:
    """Delete a Superset user (never the last active Admin) and, when no other user
    holds it, the personal manager role with its Row Level Security filter."""
    sdir = superset_state_dir(state_dir)
    _run_superset(
        ["python", str(SECURITY_SCRIPT), "remove", str(SECURITY_FILE), username],
        sdir,
        what=f"remove user {username}",
    )
