"""Serve the Great Expectations Data Docs (a static site) on 127.0.0.1.

The pipeline rebuilds the site under ``<data>/data_docs`` on every run; the data-quality
dashboard links to it. Python's own ``http.server`` serves it read-only in a process of
its own session, so ``stop`` (or ``os.killpg``) ends it with the rest of ``crmwh serve``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DEFAULT_PORT = 8089


class DocsServerError(RuntimeError):
    """The Data Docs server could not be started."""


def docs_url(port: int) -> str:
    """The address the dashboards link to for a server on ``port``."""
    return f"http://127.0.0.1:{port}/"


def start(
    directory: Path, log_path: Path, port: int = DEFAULT_PORT, timeout: float = 30
) -> subprocess.Popen:
    """Serve ``directory`` on 127.0.0.1:``port``, logging requests to ``log_path``;
    return once it answers.

    The directory is created when missing (no run has built the site yet): the server
    then lists an empty folder until the next ``crmwh run`` fills it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise DocsServerError(f"port {port} on 127.0.0.1 is already in use") from None
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(directory),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = log_path.read_text("utf-8", "replace")
            raise DocsServerError(
                f"Data Docs server on port {port} exited ({proc.returncode}): {err.strip()[-500:]}"
            )
        try:
            with urllib.request.urlopen(docs_url(port), timeout=2):
                return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    stop(proc)
    raise DocsServerError(f"Data Docs server did not answer on port {port} within {timeout:.0f}s")


def stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a server from ``start`` (its whole process group), as Superset's is stopped."""
    from pipelines.lib.superset import stop as stop_group

    stop_group(proc, timeout=timeout)
