"""Where the Superset side of the project lives: the dashboards folder, the YAML bundle, the
server folder with ``superset_config.py`` and the helper scripts Superset's own virtual
environment runs (``import_bundle.py``, ``apply_security.py``), the pinned lock file and its setup
script, and `SupersetError`, the error every Superset step raises with the tail of its output.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS_DIR = PROJECT_ROOT / "dashboards"
BUNDLE_DIR = DASHBOARDS_DIR / "bundle"
SERVER_DIR = DASHBOARDS_DIR / "server"
CONFIG_FILE = SERVER_DIR / "superset_config.py"
LOCK_FILE = SERVER_DIR / "requirements.lock"
IMPORT_SCRIPT = SERVER_DIR / "import_bundle.py"
SECURITY_SCRIPT = SERVER_DIR / "apply_security.py"
SECURITY_FILE = DASHBOARDS_DIR / "security.yaml"
SETUP_SCRIPT = PROJECT_ROOT / "scripts" / "setup_superset.sh"
LOCK_STAMP = ".crmwh-lock.sha256"


class SupersetError(RuntimeError):
    """A Superset step failed; the message says which and shows the tail of its output."""
