"""The user configuration folder: a company's mappings and tables, outside the project.

Layout (`crmwh init DIR` writes it; docs/configuration.md explains every table):

    DIR/
      settings.yml.example   how to point the pipeline at DIR
      sources/<system>.yml   mappings: each entity named here replaces the shipped entity
                             of that name (sources/<system>/source.yml); a new system adds it
      tables/<name>.csv      company tables: each replaces the shipped dbt seed of that name

Nothing under the project is edited: before dbt runs, `prepare_seed_dir` writes the
shipped seeds overlaid by `tables/*.csv` into `<data>/seeds`, and dbt reads its seeds
from there (`seed-paths` in dbt_project.yml follows `CRMWH_SEED_DIR`); the seeds'
property files (column types, tests) come along, so a user table is typed and tested
like the shipped one.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import shutil
from pathlib import Path

from pipelines.lib.settings import Settings

# seeds that are test fixtures, not company configuration
TEST_SEEDS = frozenset({"working_time_examples"})

SEED_DIR_ENV = "CRMWH_SEED_DIR"


class ConfigFolderError(ValueError):
    """The configuration folder is not usable; the message names the file."""


def editable_tables(seeds_dir: Path) -> dict[str, Path]:
    """Company-editable tables: seed name -> shipped CSV (fixtures of tests excluded)."""
    out: dict[str, Path] = {}
    for path in sorted(seeds_dir.rglob("*.csv")):
        if path.stem not in TEST_SEEDS:
            out[path.stem] = path
    return out


def user_tables(config_dir: Path | None, seeds_dir: Path) -> dict[str, Path]:
    """The user's tables: seed name -> `config_dir/tables/<name>.csv`.

    A CSV whose name is not a shipped table is an error naming the file, so that a
    misspelt name is never silently ignored.
    """
    if config_dir is None:
        return {}
    folder = config_dir / "tables"
    if not folder.is_dir():
        return {}
    known = editable_tables(seeds_dir)
    out: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".csv" or not path.is_file():
            continue
        if path.stem not in known:
            raise ConfigFolderError(
                f"{path}: no table is called {path.stem!r}; the tables are "
                f"{', '.join(sorted(known))} (docs/configuration.md)"
            )
        out[path.stem] = path
    return out


def table_path(settings: Settings, name: str) -> Path:
    """The CSV in force for table `name`: the user's copy, else the shipped seed."""
    user = user_tables(settings.config_dir, settings.seeds_dir)
    if name in user:
        return user[name]
    shipped = editable_tables(settings.seeds_dir)
    if name not in shipped:
        raise KeyError(f"no table is called {name!r}")
    return shipped[name]


def seed_dir(settings: Settings) -> Path:
    """Where dbt reads seeds: the shipped folder, or the prepared overlay when a
    configuration folder is set."""
    if settings.config_dir is None:
        return settings.seeds_dir
    return settings.data_dir / "seeds"


def prepare_seed_dir(settings: Settings) -> Path:
    """Write the seeds dbt reads: the shipped tree overlaid by the user's `tables/`.

    Without a configuration folder this is the shipped folder itself. Files are
    rewritten only when their content changed (dbt's partial parsing sees the same
    files), and files no longer shipped or overridden are removed.
    """
    shipped_dir = settings.seeds_dir
    if settings.config_dir is None:
        return shipped_dir
    if not settings.config_dir.is_dir():
        raise ConfigFolderError(
            f"{settings.config_dir}: configuration folder not found (paths.config / --config); "
            "create it with `crmwh init DIR`"
        )
    user = user_tables(settings.config_dir, shipped_dir)
    out = seed_dir(settings)
    wanted: dict[Path, Path] = {}
    for path in shipped_dir.rglob("*"):
        if path.is_file():
            rel = path.relative_to(shipped_dir)
            wanted[rel] = user.get(path.stem, path) if path.suffix == ".csv" else path
    for rel, src in wanted.items():
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists() or not filecmp.cmp(src, dest, shallow=False):
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dest)
    for path in sorted(out.rglob("*"), reverse=True):
        if path.is_file() and path.relative_to(out) not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return out


def dbt_seed_path(settings: Settings) -> str:
    """The seed path to give dbt (`CRMWH_SEED_DIR`), relative to the dbt project.

    dbt writes each compiled test of a seed's property file under its target folder at
    the property file's path; an absolute seed path makes that path absolute, outside
    the target folder, and every seed test errors ("Not a directory"). The prepared
    folder (`<data>/seeds`, usually outside the project) is therefore reached through a
    symbolic link under the project's `target/config_seeds/`, one per prepared folder.
    """
    prepared = prepare_seed_dir(settings).resolve()
    project = settings.dbt_project_dir.resolve()
    if prepared.is_relative_to(project):
        return prepared.relative_to(project).as_posix()
    key = hashlib.sha1(str(prepared).encode()).hexdigest()[:12]
    link = project / "target" / "config_seeds" / key
    if not (link.is_symlink() and Path(os.readlink(link)) == prepared):
        link.parent.mkdir(parents=True, exist_ok=True)
        for old in link.parent.iterdir():  # links to data folders deleted since
            if old.is_symlink() and not old.exists():
                old.unlink(missing_ok=True)
        tmp = link.with_name(f"{link.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(prepared, target_is_directory=True)
        tmp.replace(link)  # atomic: a concurrent run sees the old link or the new one
    return link.relative_to(project).as_posix()


def check_config(settings: Settings) -> None:
    """Raise ConfigFolderError / MappingError when the configuration in force is unusable:
    a missing folder, a table file no table is called, a mapping that does not load."""
    from pipelines.lib.mappings import load_entities

    config = settings.config_dir
    if config is not None and not config.is_dir():
        raise ConfigFolderError(
            f"{config}: configuration folder not found (paths.config / --config); "
            "create it with `crmwh init DIR`"
        )
    user_tables(config, settings.seeds_dir)
    load_entities(settings.sources_dir, config)


SOURCES_README = """\
# Your mappings

Put one `<system>.yml` here per source system whose export differs from the shipped
mapping (`sources/<system>/source.yml` in the project), or per new system.

- The file has the shape of a shipped `source.yml`: `system`, `folder`, optional
  `format` and `options`, and `entities`.
- Each entity it declares replaces the shipped entity of the same name, whole (its
  files, columns, options). Shipped entities it does not declare stay as shipped.
- `replace: all` at the top of the file drops every shipped entity of that system that
  the file does not declare.
- A `system` the project does not ship adds a new system (its raw tables are loaded;
  models reading them are yours to write).

`crmwh init DIR --with-mappings` copies every shipped mapping here as a starting point.
Delete the entities you do not change: what is not here follows the shipped mapping,
including its fixes in later versions.
"""

TABLES_README = """\
# Your tables

Each CSV here replaces the shipped table of the same name, whole; a table not here
keeps the shipped rows. Keep the header row (the columns and their meaning are in
docs/configuration.md; dbt checks the types and values on every run). A file whose
name is not one of the tables below stops the run with an error naming it.

{tables}
"""

README = """\
# crm-warehouse configuration

- `sources/`: your mappings, one `<system>.yml` per system (see sources/README.md).
- `tables/`: your company tables (stages, PBX contexts, channels, plans, rates,
  holidays, teams, loss reasons, segments; see tables/README.md).

Your files win over the project's shipped defaults; what is not here stays shipped.

```yaml
{settings}```
"""

SETTINGS_EXAMPLE = """\
# Point crm-warehouse at this folder, in the project's settings.yml:
paths:
  config: {path}
# or per command: crmwh run --config {path}
# or in the environment: CRMWH_PATHS__CONFIG={path}
"""


def init_config_folder(
    target: Path, sources_dir: Path, seeds_dir: Path, with_mappings: bool = False
) -> tuple[list[Path], list[Path]]:
    """Scaffold a configuration folder at `target`: (files written, files kept as found).

    Existing files are never overwritten, so running it again only adds what is missing.
    """
    target = target.resolve()
    written: list[Path] = []
    kept: list[Path] = []

    def put(path: Path, text: str | None = None, copy_of: Path | None = None) -> None:
        if path.exists():
            kept.append(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if copy_of is not None:
            shutil.copyfile(copy_of, path)
        else:
            path.write_text(text or "", encoding="utf-8")
        written.append(path)

    if target.exists() and not target.is_dir():
        raise ConfigFolderError(f"{target} exists and is not a folder")
    tables = editable_tables(seeds_dir)
    listing = "\n".join(f"- `{name}.csv`" for name in tables)
    put(target / "README.md", README.format(settings=SETTINGS_EXAMPLE.format(path=target)))
    put(target / "settings.yml.example", SETTINGS_EXAMPLE.format(path=target))
    put(target / "sources" / "README.md", SOURCES_README)
    put(target / "tables" / "README.md", TABLES_README.format(tables=listing))
    for name, shipped in tables.items():
        put(target / "tables" / f"{name}.csv", copy_of=shipped)
    if with_mappings:
        for path in sorted(sources_dir.glob("*/source.yml")):
            put(target / "sources" / f"{path.parent.name}.yml", copy_of=path)
    return written, kept
