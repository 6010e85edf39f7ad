"""The documentation stays inside the repository and true to the code (fast, no build).

- every relative Markdown link of every Markdown file of the repository resolves to a file
  or folder of the repository (anchors are not checked), and no link leaves it: no
  `../` past the root, no `http(s)://` or other scheme;
- the root README stays short (at most 250 lines);
- no text file cites a tracker issue number or a folder outside the repository;
- dbt_project/README.md quotes the settings of the dbt project as they are: the
  materialization of each layer, the profile's defaults for threads and memory, and the
  seeds.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DBT = ROOT / "dbt_project"

_SKIP_DIRS = {".git", ".venv", ".venv-superset", "node_modules", "state", "data", "target"}


def _repo_files(*suffixes: str) -> list[Path]:
    """Files of the repository (tracked, and new ones git does not ignore)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        paths = [ROOT / p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout
        paths = [
            p
            for p in ROOT.rglob("*")
            if p.is_file() and not _SKIP_DIRS & set(p.relative_to(ROOT).parts)
        ]
    return sorted(p for p in paths if p.suffix in suffixes and p.is_file())


MARKDOWN = _repo_files(".md")

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
# [text](target "title") and ![alt](target); the text may hold one level of brackets
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.M)
_AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]+)>")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _links(text: str) -> list[str]:
    """Link targets of a Markdown text, outside code blocks and code spans."""
    text = _FENCE.sub("", text)
    text = _CODE_SPAN.sub("", text)
    return _INLINE.findall(text) + _REFERENCE.findall(text) + _AUTOLINK.findall(text)


def _problem(md: Path, target: str) -> str | None:
    if not target or target.startswith("#"):
        return None
    if _SCHEME.match(target) or target.startswith("//"):
        return "leaves the repository"
    path = unquote(target.split("#", 1)[0].split("?", 1)[0])
    if not path:
        return None
    resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (md.parent / path)
    resolved = resolved.resolve()
    if not resolved.is_relative_to(ROOT):
        return "points outside the repository"
    if not resolved.exists():
        return "does not exist"
    return None


def test_markdown_files_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in MARKDOWN}
    assert {"README.md", "dbt_project/README.md", "docs/metrics.md"} <= names


def test_link_checker_catches_bad_links(tmp_path: Path) -> None:
    text = (
        "[ok](docs/metrics.md#funnel) [out](../shared/spec/metrics.md) "
        "[web](https://example.com/) `[code](nowhere.md)` [gone](docs/nowhere.md)\n"
        "```\n[fenced](nowhere.md)\n```\n[ref]: https://example.com/\n"
    )
    found = {t: _problem(ROOT / "README.md", t) for t in _links(text)}
    assert found == {
        "docs/metrics.md#funnel": None,
        "../shared/spec/metrics.md": "points outside the repository",
        "https://example.com/": "leaves the repository",
        "docs/nowhere.md": "does not exist",
    }


@pytest.mark.parametrize("md", MARKDOWN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_markdown_links_stay_in_the_repository(md: Path) -> None:
    bad = [
        f"{target}: {why}"
        for target in _links(md.read_text(encoding="utf-8"))
        if (why := _problem(md, target))
    ]
    assert not bad, f"{md.relative_to(ROOT)}: " + "; ".join(bad)


def test_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move details into docs/"


def test_no_reference_to_tracker_issues_or_outside_folders() -> None:
    issue = re.compile(r"\b[Ii]ssues? \d+\b")  # "GX issue #11579" (upstream) is fine
    outside = re.compile(r"\.\./" + r"shared\b")
    me = Path(__file__).resolve()
    bad = []
    for path in _repo_files(".py", ".sql", ".yml", ".yaml", ".md", ".toml", ".cfg", ".sh"):
        if path.resolve() == me:
            continue
        for no, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            if issue.search(line) or outside.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()[:100]}")
    assert not bad, "state the fact or link a page of docs/ instead:\n" + "\n".join(bad)


# --- dbt_project/README.md against the project --------------------------------------------

_PLURAL = {"view": "views", "table": "tables", "incremental": "incremental"}


def _dbt_readme() -> str:
    return (DBT / "README.md").read_text(encoding="utf-8")


def test_dbt_readme_materializations() -> None:
    project = yaml.safe_load((DBT / "dbt_project.yml").read_text(encoding="utf-8"))
    layers = project["models"]["crm_warehouse"]
    readme = _dbt_readme()
    for layer in ("staging", "intermediate", "marts"):
        quoted = re.search(rf"^models/{layer}/\S*\s+\S+(?: / \S+)*\s+(\w+)", readme, re.M)
        assert quoted, f"dbt_project/README.md: no line for models/{layer}/"
        expected = _PLURAL[layers[layer]["+materialized"]]
        assert quoted.group(1) == expected, (
            f"dbt_project/README.md says {layer} models are {quoted.group(1)}; "
            f"dbt_project.yml materializes them as {layers[layer]['+materialized']}"
        )


def _profile_default(variable: str) -> str:
    text = (DBT / "profiles.yml").read_text(encoding="utf-8")
    found = re.search(rf"env_var\('{variable}',\s*'([^']*)'\)", text)
    assert found, f"profiles.yml reads no {variable} with a default"
    return found.group(1)


@pytest.mark.parametrize(
    "variable",
    [
        "CRMWH_DBT_THREADS",
        "CRMWH_DUCKDB_MEMORY_LIMIT",
        "CRMWH_DUCKDB_THREADS",
        "CRMWH_DUCKDB_TEMP_DIRECTORY",
    ],
)
def test_dbt_readme_profile_defaults(variable: str) -> None:
    quoted = re.search(rf"`{variable}` \(default `?([^`)]+)`?\)", _dbt_readme())
    assert quoted, f"dbt_project/README.md does not quote the default of {variable}"
    assert quoted.group(1) == _profile_default(variable)


def test_dbt_readme_profile_defaults_match_settings() -> None:
    """The profile's defaults are the defaults of settings.yml, which the pipeline passes."""
    settings = yaml.safe_load((ROOT / "settings.yml").read_text(encoding="utf-8"))
    assert str(settings["dbt"]["threads"]) == _profile_default("CRMWH_DBT_THREADS")
    assert settings["duckdb"]["memory_limit"] == _profile_default("CRMWH_DUCKDB_MEMORY_LIMIT")
    assert str(settings["duckdb"]["threads"]) == _profile_default("CRMWH_DUCKDB_THREADS")


def test_dbt_readme_seeds() -> None:
    seeds = {p.stem for p in (DBT / "seeds").rglob("*.csv")}
    readme = _dbt_readme()
    count = re.search(r"^seeds/\s+(\d+) tables", readme, re.M)
    assert count, "dbt_project/README.md does not give the number of seeds"
    assert int(count.group(1)) == len(seeds), f"the project has {len(seeds)} seeds"
    paragraph = readme[readme.index("Seeds, ") :].split("\n\n", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", paragraph))
    assert named == seeds, f"missing: {sorted(seeds - named)}; not seeds: {sorted(named - seeds)}"
