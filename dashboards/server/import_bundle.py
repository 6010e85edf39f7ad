"""Import a dashboards bundle zip into Superset, overwriting what the bundle defines.

Runs inside the Superset virtual environment (``.venv-superset/bin/python``), started by
``pipelines.lib.superset.prepare``. Usage: ``python import_bundle.py <zip> <username>
[<security.yaml>]``; with the security file it then applies its roles and Row Level
Security (``apply_security.py roles``) in the same process, as loading Superset costs
seconds.

Why not ``superset import-dashboards``: in Superset 6.1 that command imports the
databases, datasets and charts of a bundle with ``overwrite=False``, so once they exist a
changed warehouse path, dataset or chart in git is silently ignored on the next run; and
``superset import-directory`` sets no owner and exits 0 on invalid YAML. This script runs
Superset's own ``ImportAssetsCommand`` (the command behind ``/api/v1/assets/import/``),
which validates every file, overwrites every object by UUID (so re-running updates in
place and never duplicates), makes the given user the owner, and exits non-zero with the
validation messages on any problem.
"""

from __future__ import annotations

import json
import sys
from zipfile import ZipFile, is_zipfile


def main(argv: list[str]) -> int:
    """Import the bundle; return the process exit code."""
    if len(argv) not in (3, 4):
        print("usage: import_bundle.py <bundle.zip> <username> [<security.yaml>]", file=sys.stderr)
        return 2
    path, username = argv[1], argv[2]
    security = argv[3] if len(argv) == 4 else None
    if not is_zipfile(path):
        print(f"not a zip file: {path}", file=sys.stderr)
        return 2

    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import security_manager
        from superset.commands.exceptions import CommandInvalidError
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.commands.importers.v1.utils import get_contents_from_bundle
        from superset.utils.core import override_user

        user = security_manager.find_user(username=username)
        if user is None:
            print(f"no such Superset user: {username}", file=sys.stderr)
            return 2
        with ZipFile(path) as bundle:
            contents = get_contents_from_bundle(bundle)
        try:
            with override_user(user):
                ImportAssetsCommand(contents).run()
        except CommandInvalidError as exc:
            print("invalid dashboards bundle:", file=sys.stderr)
            print(json.dumps(exc.normalized_messages(), indent=2), file=sys.stderr)
            return 1
        names = sorted(name for name in contents if name.endswith((".yaml", ".yml")))
        print(f"imported {len(names)} files from {path} as {username}")
        if security:
            import yaml
            from apply_security import apply_roles  # this script's folder is on sys.path

            with open(security, encoding="utf-8") as fh:
                apply_roles(yaml.safe_load(fh))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
