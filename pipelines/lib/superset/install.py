"""Superset's virtual environment and how it is run: the pinned install (rebuilt when
``requirements.lock`` changes), the state folder with its generated secret key (written mode
600), the environment a ``superset`` command gets (secrets stripped, the config file set) and
running one ``superset`` CLI call with a timeout and the tail of its output on failure.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
from pathlib import Path

from pipelines.lib.child_env import without_secrets
from pipelines.lib.superset.layout import (
    CONFIG_FILE,
    DEFAULT_VENV,
    LOCK_FILE,
    LOCK_STAMP,
    PROJECT_ROOT,
    SETUP_SCRIPT,
    SupersetError,
)

_SUPERSET_TIMEOUT = 600  # seconds for one `superset` CLI call (db upgrade on a slow disk)


def venv_dir() -> Path:
    """The Superset virtual environment (``CRMWH_SUPERSET_VENV`` overrides the default)."""
    return Path(os.environ.get("CRMWH_SUPERSET_VENV", DEFAULT_VENV))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lock_hash() -> str:
    return _sha256(LOCK_FILE.read_bytes())


def _venv_current(venv: Path) -> bool:
    stamp = venv / LOCK_STAMP
    return (
        (venv / "bin" / "superset").exists()
        and stamp.exists()
        and stamp.read_text(encoding="utf-8").strip() == _lock_hash()
    )


def ensure_installed() -> Path:
    """Make sure ``.venv-superset`` matches the lock file; return the ``superset`` path.

    Runs ``scripts/setup_superset.sh`` only when the venv is missing or was built from a
    different lock (the script stores the lock's sha256 in the venv), so the common case
    costs a file read.
    """
    venv = venv_dir()
    if not _venv_current(venv):
        env = dict(os.environ, SUPERSET_VENV=str(venv))
        result = subprocess.run(
            ["bash", str(SETUP_SCRIPT)],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not _venv_current(venv):
            raise SupersetError(
                f"{SETUP_SCRIPT.name} failed (exit {result.returncode}):\n"
                f"{_tail(result.stdout + result.stderr)}"
            )
    return venv / "bin" / "superset"


def superset_state_dir(state_dir: Path) -> Path:
    """Where Superset's own state lives inside the project state directory."""
    return Path(state_dir).resolve() / "superset"


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` with mode 600 (never world-readable, not even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _ensure_secret_key(sdir: Path) -> None:
    """Generate the Flask secret key once; Superset's config refuses to start without it.

    Kept across restarts because it signs sessions and encrypts stored DB credentials:
    a new key on every start would log everybody out and orphan those secrets.
    """
    key_file = sdir / "secret_key"
    if not key_file.exists() or not key_file.read_text(encoding="utf-8").strip():
        _write_private(key_file, secrets.token_urlsafe(48) + "\n")


def _superset_env(sdir: Path) -> dict[str, str]:
    """Environment for every Superset process: its config, its state, its own venv; no
    secrets (``child_env``: passwords reach Superset through stdin or private files)."""
    env = {
        k: v
        for k, v in without_secrets().items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "FLASK_APP", "SUPERSET_HOME"}
        and not k.startswith("SUPERSET__")
    }
    bin_dir = venv_dir() / "bin"
    env.update(
        SUPERSET_CONFIG_PATH=str(CONFIG_FILE),
        CRMWH_SUPERSET_STATE=str(sdir),
        SUPERSET_HOME=str(sdir),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    return env


def _metadata_key() -> str:
    """Which metadata database Superset uses: ``sqlite`` (default) or a file-safe id of
    the PostgreSQL database of the reports mode (``pipelines.lib.reports``)."""
    ident = os.environ.get("CRMWH_SUPERSET_METADATA_ID", "")
    return _sha256(ident.encode())[:16] if ident else "sqlite"


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _run_superset(
    args: list[str], sdir: Path, *, stdin: str | None = None, what: str | None = None
) -> str:
    """Run a program of the Superset venv (``superset``, ``python``); raise on failure."""
    cmd = [str(venv_dir() / "bin" / args[0]), *args[1:]]
    result = subprocess.run(
        cmd,
        env=_superset_env(sdir),
        cwd=sdir,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=_SUPERSET_TIMEOUT,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SupersetError(
            f"{what or ' '.join(args[:3])} failed (exit {result.returncode}):\n{_tail(output)}"
        )
    return output
