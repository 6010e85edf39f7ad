"""The package's shape: configuration passed down, nothing run at import, short modules."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipelines"
MAX_LINES = 500
#: modules allowed to change this process's environment, and why
ENVIRON_WRITERS = {
    # scoped_environ: dagster-dbt starts dbt, and Dagster reads its batching switches,
    # from this process's environment only; set around those calls and restored
    "pipelines/lib/child_env.py",
    # GX reads GX_ANALYTICS_ENABLED when it is imported: off before the import, no network
    "pipelines/lib/quality/gx.py",
}
MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def _is_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def environ_writes(path: Path) -> list[str]:
    """Lines of `path` that change `os.environ` (item assignment or deletion, a mutating
    method, `os.putenv`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
        if any(isinstance(t, ast.Subscript) and _is_environ(t.value) for t in targets):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if (func.attr in MUTATORS and _is_environ(func.value)) or (
                func.attr == "putenv" and isinstance(func.value, ast.Name) and func.value.id == "os"
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_environ_writes_are_found() -> None:
    """The detector itself: each way of writing the environment is caught."""
    sample = ROOT / "tests" / "_environ_sample.py"
    sample.write_text(
        "import os\nos.environ['A'] = '1'\nos.environ.update(B='2')\n"
        "os.environ.setdefault('C', '3')\ndel os.environ['A']\nos.putenv('D', '4')\n"
        "x = os.environ.get('E')\n",
        encoding="utf-8",
    )
    try:
        lines = sorted(int(w.rsplit(":", 1)[1]) for w in environ_writes(sample))
        assert lines == [2, 3, 4, 5, 6]
    finally:
        sample.unlink()


def test_no_module_changes_the_process_environment() -> None:
    """Settings are passed as arguments; only child processes get environments of their
    own (`env=` of subprocess), except where a library reads nothing else."""
    writes = [
        w
        for path in sorted(PACKAGE.rglob("*.py"))
        if str(path.relative_to(ROOT)) not in ENVIRON_WRITERS
        for w in environ_writes(path)
    ]
    assert writes == []


def test_importing_the_definitions_reads_no_settings_and_builds_nothing() -> None:
    """The code location builds its definitions when Dagster loads it, not at import: an
    import with a settings file that does not exist succeeds."""
    env = dict(os.environ, CRMWH_SETTINGS="/nonexistent/settings.yml")
    code = (
        "import dagster, pipelines.definitions as d; "
        "assert not isinstance(d.defs, dagster.Definitions), type(d.defs); print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_every_module_is_short_or_says_why_it_is_long() -> None:
    """A module over MAX_LINES lines says why at its top ("Long because: ...")."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_LINES and "Long because:" not in doc:
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert long == []
