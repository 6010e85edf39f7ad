"""Where the Superset side of the project lives: the dashboards folder, the YAML bundle, the
server folder with ``superset_config.py`` and the helper scripts Superset's own virtual
environment runs (``import_bundle.py``, ``apply_security.py``), the pinned lock file and its setup
script, and `SupersetError`, the error every Superset step raises with the tail of its output.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.lib.settings import INSTALLED, PROJECT_ROOT

#: the `dashboards` package, beside `pipelines` in a checkout and in an installed package
DASHBOARDS_DIR = Path(__file__).resolve().parents[3] / "dashboards"
BUNDLE_DIR = DASHBOARDS_DIR / "bundle"
SERVER_DIR = DASHBOARDS_DIR / "server"
CONFIG_FILE = SERVER_DIR / "superset_config.py"
#: the lock and the setup script: the checkout's, or their copies in the installed package
LOCK_FILE = PROJECT_ROOT / "dashboards" / "server" / "requirements.lock"
IMPORT_SCRIPT = SERVER_DIR / "import_bundle.py"
SECURITY_SCRIPT = SERVER_DIR / "apply_security.py"
SECURITY_FILE = DASHBOARDS_DIR / "security.yaml"
SETUP_SCRIPT = PROJECT_ROOT / "scripts" / "setup_superset.sh"
#: Superset's own virtual environment: the checkout's `.venv-superset`; installed, beside
#: the environment `crmwh` runs from (`CRMWH_SUPERSET_VENV` overrides both)
DEFAULT_VENV = (Path(sys.prefix).parent if INSTALLED else PROJECT_ROOT) / ".venv-superset"
LOCK_STAMP = ".crmwh-lock.sha256"


class SupersetError(RuntimeError):
    """A Superset step failed; the message says which and shows the tail of its output."""
