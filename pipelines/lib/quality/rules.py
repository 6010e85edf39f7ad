"""Data-quality rules: what every raw load and every staging model must satisfy.

A rule is plain data derived from the source definitions (`sources/*/source.yml`) and
`quality/suites.yml`. Rules are known when Dagster loads its definitions (each becomes an
asset check with its severity) without importing Great Expectations, whose import alone
takes seconds. `gx.py` compiles them into GX expectation suites that run inside DuckDB;
`sql.py` compiles the same rules into plain SQL, the baseline GX is measured against.

Some bounds depend on the batch being checked (the load time, the row counts of earlier
files, the stages an export ships): `bind()` turns a rule into concrete bounds for one batch.

Long because: the vocabulary of every rule kind (its parameters, its bound for a batch, its
description) is kept in one place, so that a new kind is added in one file and the GX and
SQL compilers read the same definitions.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pipelines.lib.mappings import Entity
from pipelines.lib.quality.mask import KINDS

BLOCKING = "blocking"
WARNING = "warning"
SEVERITIES = (BLOCKING, WARNING)

RAW = "raw"
STAGING = "staging"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class QualityConfigError(ValueError):
    """`quality/suites.yml` names something that does not exist; the message says what."""


@dataclass(frozen=True)
class Rule:
    """One expectation with its severity. `name` is the Dagster check name (unique per table).

    kind: not_null | unique | min | date_range | inn | phone | email | known_values | volume |
          freshness | references
    """

    name: str
    kind: str
    columns: tuple[str, ...] = ()
    severity: str = BLOCKING
    mostly: float | None = None
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    description: str = ""

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    @property
    def column(self) -> str:
        return self.columns[0]


@dataclass(frozen=True)
class Suite:
    """The rules of one table: a raw table (batch = its latest load) or a staging model."""

    layer: str  # raw | staging
    table: str  # raw: `<system>__<entity>`; staging: `stg_<system>__<entity>`
    system: str
    schema: str  # schema of the relation in DuckDB
    rules: tuple[Rule, ...]
    column_types: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # sensitive columns -> mask kind (`mask.KINDS`): their sampled values are reported masked
    masks: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def relation(self) -> str:
        return f'{self.schema}."{self.table}"'

    @property
    def name(self) -> str:
        return f"{self.layer}.{self.table}"


@dataclass(frozen=True)
class FileLoad:
    """One loaded file of a table, from `raw.load_manifest` (or the raw rows' lineage)."""

    load_id: str
    file_sha256: str
    rows: int
    loaded_at: dt.datetime
    cadence: str = ""  # what one file covers (`cadence`): volume compares like with like


def cadence(start: dt.date | str | None, end: dt.date | str | None) -> str:
    """What one file covers, from the export dates it belongs to (its partition span, taken
    from its name, a column or when it was written): `daily`, `weekly`, `monthly`,
    `quarterly`, `yearly`, else `<n>-day`; '' when unknown. A monthly register and a daily list of the
    same table are different cadences, so the volume rules never compare one with the other.
    """
    if not start or not end:
        return ""
    first = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start)[:10])
    last = end if isinstance(end, dt.date) else dt.date.fromisoformat(str(end)[:10])
    days = (last - first).days + 1
    for name, lo, hi in (("daily", 1, 1), ("weekly", 7, 7), ("monthly", 28, 31),
                         ("quarterly", 89, 92), ("yearly", 365, 366)):  # fmt: skip
        if lo <= days <= hi:
            return name
    return f"{days}-day"


@dataclass(frozen=True)
class Batch:
    """What one run checks: the latest load of a raw table, or a whole staging model."""

    relation: str  # SQL relation holding exactly the rows checked
    load_id: str | None
    loaded_at: dt.datetime  # the load's time (raw) or the check's time (staging)
    files: int = 0  # files in the load
    history: tuple[FileLoad, ...] = ()  # earlier files of the table, newest first
    cadences: tuple[str, ...] = ()  # the cadence of each file of the load (FileLoad.cadence)
    known_values: dict[str, list[str]] = field(default_factory=dict)  # rule name -> values
    empty: bool = False  # nothing loaded yet: every rule passes vacuously


def default_config_path(root: Path) -> Path:
    return root / "quality" / "suites.yml"


def load_config(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for section in ("defaults", "raw", "staging"):
        doc.setdefault(section, {})
    return doc


def label_key(value: str) -> str:
    """Matching key of a label typed by people; same as dbt's `normalize_key` and the SQL macro."""
    return re.sub(r" +", " ", value.lower().replace("ё", "е")).strip()


def pipeline_stages(seed: Path) -> dict[str, list[str]]:
    """Stage labels per pipeline from dbt's `pipeline_stages` seed (stage and stage_code).

    `seed` is the CSV or the dbt project's `seeds/` folder (searched recursively).
    """
    if seed.is_dir():
        found = sorted(seed.rglob("pipeline_stages.csv"))
        if not found:
            return {}
        seed = found[0]
    if not seed.exists():
        return {}
    out: dict[str, list[str]] = {}
    with seed.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            labels = out.setdefault(row["pipeline"].strip(), [])
            for key in ("stage", "stage_code"):
                value = (row.get(key) or "").strip()
                if value and value not in labels:
                    labels.append(value)
    return out


def _severity(value: str, where: str) -> str:
    if value not in SEVERITIES:
        raise QualityConfigError(f"{where}: severity must be one of {SEVERITIES}, not {value!r}")
    return value


def _check_columns(columns: list[str], known: dict[str, str], where: str) -> None:
    missing = [c for c in columns if c not in known]
    if missing:
        raise QualityConfigError(f"{where}: unknown column(s) {missing}")


def _with_block(rule: Rule, block_below: float | None) -> list[Rule]:
    """A warning rule, plus a blocking twin when the good share falls below `block_below`."""
    if block_below is None or rule.blocking:
        return [rule]
    twin = replace(
        rule,
        name=f"{rule.name}__block",
        severity=BLOCKING,
        mostly=block_below,
        description=f"{rule.description} Blocking below {block_below:.0%} of rows.",
    )
    return [rule, twin]


def raw_suite(
    entity: Entity, config: dict[str, Any], stages: dict[str, list[str]] | None = None
) -> Suite:
    """The rules of `raw.<system>__<entity>`: derived from the layout, refined by the config."""
    defaults = config.get("defaults") or {}
    spec = (config.get("raw") or {}).get(entity.table) or {}
    where = f"quality/suites.yml: raw.{entity.table}"
    types = {c: t for c, t in entity.raw_schema().items()}
    rules: list[Rule] = []

    for col in entity.columns:
        if col.required:
            rules.append(
                Rule(f"not_null__{col.name}", "not_null", (col.name,), BLOCKING, 1.0,
                     description=f"Required field `{col.source or col.name}` is present.")
            )  # fmt: skip
    for name, mostly in (spec.get("complete") or {}).items():
        _check_columns([name], types, where)
        rules.append(
            Rule(f"complete__{name}", "not_null", (name,), WARNING, float(mostly),
                 description=f"`{name}` is filled in at least {float(mostly):.0%} of rows.")
        )  # fmt: skip

    key = list(spec.get("key") or [])
    if key:
        _check_columns(key, types, where)
        dup = defaults.get("duplicates") or {}
        rules.append(
            Rule(
                "unique__" + "__".join(key),
                "unique",
                (*key, "_file_sha256"),
                _severity(dup.get("severity", WARNING), where),
                description=(
                    f"No two rows of one file share ({', '.join(key)}); raw keeps duplicates, "
                    "staging merges them: this counts them."
                ),
            )
        )

    for col in entity.columns:
        if col.min is not None:
            rules.append(
                Rule(f"min__{col.name}", "min", (col.name,), BLOCKING, 1.0, {"min": col.min},
                     description=f"`{col.name}` is at least {col.min}.")
            )  # fmt: skip

    dates = defaults.get("dates") or {}
    future = spec.get("future_days") or {}
    _check_columns(list(future), types, where)
    for col in entity.columns:
        if col.type not in {"date", "timestamp"}:
            continue
        days = int(future.get(col.name, dates.get("future_days", 1)))
        rules.extend(
            _with_block(
                Rule(
                    f"plausible__{col.name}",
                    "date_range",
                    (col.name,),
                    _severity(dates.get("severity", WARNING), where),
                    float(dates.get("mostly", 1.0)),
                    {"min": str(dates.get("min", "2000-01-01")), "future_days": days,
                     "type": col.type},
                    description=(
                        f"`{col.name}` lies between {dates.get('min', '2000-01-01')} and the "
                        f"load time + {days} day(s)."
                    ),
                ),
                dates.get("block_below"),
            )
        )  # fmt: skip

    inn = defaults.get("inn") or {}
    for name in spec.get("inn") or []:
        _check_columns([name], types, where)
        rules.extend(
            _with_block(
                Rule(f"inn__{name}", "inn", (name,), _severity(inn.get("severity", WARNING), where),
                     float(spec.get("inn_mostly", 1.0)),
                     description=f"`{name}` is a checksum-valid INN (10 or 12 digits)."),
                inn.get("block_below"),
            )
        )  # fmt: skip
    phone = defaults.get("phone") or {}
    for name in spec.get("phone") or []:
        _check_columns([name], types, where)
        rules.extend(
            _with_block(
                Rule(f"e164__{name}", "phone", (name,),
                     _severity(phone.get("severity", WARNING), where),
                     float(spec.get("phone_mostly", 1.0)),
                     description=f"`{name}` normalises to an E.164 number."),
                phone.get("block_below"),
            )
        )  # fmt: skip

    email = defaults.get("email") or {}
    for name in spec.get("email") or []:
        _check_columns([name], types, where)
        rules.append(
            Rule(f"email__{name}", "email", (name,), _severity(email.get("severity", WARNING), where),
                 float(spec.get("email_mostly", 1.0)),
                 description=f"`{name}` is an e-mail address (name@domain.tld).")
        )  # fmt: skip

    st = spec.get("stages")
    if st:
        sdef = defaults.get("stages") or {}
        _check_columns([st["column"]], types, where)
        values = (stages or {}).get(st["pipeline"], [])
        rules.extend(
            _with_block(
                Rule(
                    f"known_stage__{st['column']}",
                    "known_values",
                    (st["column"],),
                    _severity(sdef.get("severity", WARNING), where),
                    1.0,
                    {"values": list(values), "pipeline": st["pipeline"],
                     "exported": st.get("exported")},
                    description=(
                        f"`{st['column']}` is a stage of the configured `{st['pipeline']}` "
                        "pipeline (case-insensitive, ё = е)."
                    ),
                ),
                sdef.get("block_below"),
            )
        )  # fmt: skip

    vol = defaults.get("volume") or {}
    band = vol.get("band", [0.5, 2.0])
    vparams = {"trailing_files": int(vol.get("trailing_files", 5)),
               "min_history": int(vol.get("min_history", 3))}  # fmt: skip
    rules.append(
        Rule("volume", "volume", (), WARNING, None,
             {**vparams, "lower": float(band[0]), "upper": float(band[1])},
             description=(f"Rows of the load within {band[0]}x..{band[1]}x the median rows per "
                          "file of the trailing files, times the files in the load."))
    )  # fmt: skip
    if vol.get("block_below") is not None:
        rules.append(
            Rule("volume__block", "volume", (), BLOCKING, None,
                 {**vparams, "lower": float(vol["block_below"]), "upper": None},
                 description=f"Rows of the load at least {vol['block_below']}x the expected rows.")
        )  # fmt: skip

    if entity.freshness_field:
        fr = defaults.get("freshness") or {}
        days = int(spec.get("freshness_days", fr.get("max_age_days", 7)))
        ftype = types.get(entity.freshness_field, "TIMESTAMP")
        rules.append(
            Rule(f"freshness__{entity.freshness_field}", "freshness", (entity.freshness_field,),
                 _severity(fr.get("severity", WARNING), where), None,
                 {"max_age_days": days, "type": "date" if ftype == "DATE" else "timestamp"},
                 description=f"Newest `{entity.freshness_field}` is at most {days} days old.")
        )  # fmt: skip
    _unique_names(rules, where)
    masks = sensitive_columns(spec, where)
    _check_columns(list(masks), types, where)
    return Suite(RAW, entity.table, entity.system, "raw", tuple(rules), types, masks)


def sensitive_columns(spec: dict[str, Any], where: str) -> dict[str, str]:
    """Columns of a table whose values are reported masked, with their mask kind: those
    checked as an INN (`inn:`), a phone (`phone:`) or an e-mail (`email:`), and those of
    `mask: {column: kind}`."""
    masks = {c: "inn" for c in spec.get("inn") or []}
    masks |= {c: "phone" for c in spec.get("phone") or []}
    masks |= {c: "email" for c in spec.get("email") or []}
    declared = spec.get("mask") or {}
    if not isinstance(declared, dict):
        raise QualityConfigError(f"{where}: mask: expected {{column: kind}}, kinds {KINDS}")
    for col, kind in declared.items():
        if kind not in KINDS:
            raise QualityConfigError(f"{where}: mask of {col}: {kind!r} is not one of {KINDS}")
        masks[str(col)] = kind
    return masks


def staging_suite(
    model: str,
    spec: dict[str, Any],
    schema: str = "staging",
    masks: dict[str, str] | None = None,
) -> Suite:
    """Rules of a staging model: its key is unique (blocking); references resolve (warning).

    `masks`: its sensitive columns (by default those of its `mask:`; `staging_suites` adds
    the columns of the same name marked in the raw table it is built from)."""
    where = f"quality/suites.yml: staging.{model}"
    system = model.removeprefix("stg_").split("__")[0]
    rules: list[Rule] = []
    key = list(spec.get("key") or [])
    if key:
        label = "__".join(re.sub(r"[^a-z0-9]+", "_", k.lower()).strip("_") for k in key)
        rules.append(
            Rule(f"unique__{label}", "unique", tuple(key), BLOCKING,
                 description=f"One row per ({', '.join(key)}): deduplication worked.")
        )  # fmt: skip
    for col, target in (spec.get("references") or {}).items():
        rules.append(_reference_rule(col, target, schema, where))
    _unique_names(rules, where)
    own = sensitive_columns(spec, where)
    return Suite(STAGING, model, system, schema, tuple(rules), masks={**(masks or {}), **own})


def _reference_rule(col: str, target: Any, schema: str, where: str) -> Rule:
    """`col: model.column` (a warning), or `col: {to: model.column | [..], severity, where}`.

    `to` may name several relations (the value must exist in one of them) and a relation in
    another schema (`schema.model.column`); `where` restricts the rows checked (SQL).
    """
    spec = target if isinstance(target, dict) else {"to": target}
    targets = spec.get("to")
    targets = [targets] if isinstance(targets, str) else list(targets or [])
    if not targets:
        raise QualityConfigError(f"{where}: reference {col} has no `to`")
    refs: list[tuple[str, str]] = []
    for t in targets:
        parts = str(t).split(".")
        if len(parts) == 2:
            parts = [schema, *parts]
        if len(parts) != 3 or not all(_IDENT.match(x) for x in [col, *parts]):
            raise QualityConfigError(
                f"{where}: reference {col}: {t} is not model.column or schema.model.column"
            )
        refs.append((f'{parts[0]}."{parts[1]}"', parts[2]))
    shown = " or ".join(f"`{t}`" for t in targets)
    cond = spec.get("where")
    return Rule(
        f"references__{col}", "references", (col,),
        _severity(spec.get("severity", WARNING), where),
        params={"relation": refs[0][0], "column": refs[0][1], "targets": refs, "where": cond},
        description=f"Every `{col}` exists in {shown}" + (f" (rows where {cond})." if cond else "."),
    )  # fmt: skip


def _unique_names(rules: list[Rule], where: str) -> None:
    seen: set[str] = set()
    for r in rules:
        if r.name in seen:
            raise QualityConfigError(f"{where}: two rules are named {r.name}")
        seen.add(r.name)


def raw_suites(
    entities: list[Entity], config: dict[str, Any], stages: dict[str, list[str]]
) -> list[Suite]:
    known = {e.table for e in entities}
    unknown = sorted(set(config.get("raw") or {}) - known)
    if unknown:
        raise QualityConfigError(f"quality/suites.yml: raw tables not in sources/: {unknown}")
    return [raw_suite(e, config, stages) for e in entities]


def staging_suites(config: dict[str, Any], models: set[str] | None = None) -> list[Suite]:
    """Suites of the configured staging models (only those in `models`, when given)."""
    out = []
    for model, spec in (config.get("staging") or {}).items():
        if models is not None and model not in models:
            continue
        raw = (config.get("raw") or {}).get(model.removeprefix("stg_")) or {}
        inherited = sensitive_columns(raw, f"quality/suites.yml: raw.{model.removeprefix('stg_')}")
        out.append(staging_suite(model, spec or {}, masks=inherited))
    return out


# --------------------------------------------------------------------------- binding


@dataclass(frozen=True)
class Bound:
    """A rule with concrete bounds for one batch (what GX and plain SQL both evaluate)."""

    rule: Rule
    min_value: Any = None
    max_value: Any = None
    values: tuple[str, ...] = ()
    note: str = ""


def bind(rule: Rule, batch: Batch, now: dt.datetime) -> Bound:
    """Concrete bounds of `rule` for `batch` (load time, trailing files, exported stages)."""
    p = rule.params
    if rule.kind == "min":
        return Bound(rule, min_value=p["min"])
    if rule.kind == "date_range":
        lo = dt.datetime.fromisoformat(p["min"])
        hi = batch.loaded_at + dt.timedelta(days=int(p["future_days"]))
        if p.get("type") == "date":
            return Bound(rule, min_value=lo.date(), max_value=hi.date())
        return Bound(rule, min_value=lo, max_value=hi)
    if rule.kind == "freshness":
        lo = now - dt.timedelta(days=int(p["max_age_days"]))
        return Bound(rule, min_value=lo.date() if p.get("type") == "date" else lo)
    if rule.kind == "known_values":
        values = batch.known_values.get(rule.name) or p.get("values") or []
        return Bound(rule, values=tuple(sorted({label_key(v) for v in values})))
    if rule.kind == "volume":
        return _bind_volume(rule, batch)
    return Bound(rule)


def _bind_volume(rule: Rule, batch: Batch) -> Bound:
    """Expected rows of the load: for each cadence among its files, the median rows per
    file of the trailing earlier files of that cadence times the load's files of it. A
    cadence with fewer than `min_history` earlier files leaves the load not judged."""
    p = rule.params
    if batch.files == 0:
        return Bound(rule, min_value=0, note="no files: not judged")
    current = list(batch.cadences) or [""] * batch.files
    expected = 0.0
    parts = []
    for cad in sorted(set(current)):
        n = current.count(cad)
        earlier = [f.rows for f in batch.history if f.cadence == cad][: int(p["trailing_files"])]
        label = f"{cad} " if cad else ""
        if len(earlier) < int(p["min_history"]):
            return Bound(
                rule, min_value=0, note=f"{len(earlier)} earlier {label}file(s): not judged"
            )
        med = statistics.median(earlier)
        expected += med * n
        parts.append(f"median {med:g} rows/file x {n} file(s)" + (f" ({cad})" if cad else ""))
    lo = int(expected * float(p["lower"]))
    hi = None if p.get("upper") is None else int(expected * float(p["upper"])) + 1
    return Bound(rule, min_value=lo, max_value=hi, note="; ".join(parts))


def volume_verdict(rule: Rule, batch: Batch, rows: int) -> tuple[bool, Bound]:
    """Whether `rows` (the load's rows) satisfy a volume rule for `batch`, and its bounds."""
    b = _bind_volume(rule, batch)
    ok = (b.min_value is None or rows >= b.min_value) and (
        b.max_value is None or rows <= b.max_value
    )
    return ok, b
