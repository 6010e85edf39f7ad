"""The package's shape: configuration passed down, nothing run at import, short modules."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import zipfile
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


def test_the_wheel_holds_every_file_its_code_reads(tmp_path: Path) -> None:
    """The wheel, unpacked away from the checkout, imports the code location and the
    dashboards spec and finds what they read: dbt's metric docs, the translation
    catalogue, the reports file (the onboarding test installs it, but only end to end)."""
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    built = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    code = (
        "import pipelines.lib.settings as s, pipelines.definitions; "
        "from dashboards.spec import datasets, definitions, dashboards, i18n; "
        "assert s.INSTALLED and definitions.DOCS_FILE.is_file(), definitions.DOCS_FILE; "
        "assert i18n.catalogue('ru') and i18n.REPORTS_FILE.is_file(); "
        "print(len(definitions.definitions()), len(dashboards.DASHBOARDS))"
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("CRMWH_SETTINGS", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    blocks, boards = map(int, done.stdout.split())
    assert blocks >= 90 and boards >= 5, done.stdout
