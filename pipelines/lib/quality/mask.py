"""Masking of the values a check reports: samples of a sensitive column never leave in full.

Which raw columns are sensitive is declared once, in `quality/suites.yml` (see `rules.py`):
the columns listed under `phone:` and `inn:` of a table, plus its `mask: {column: kind}`.
Samples of unexpected values (GX's `partial_unexpected_list`, the rows of a compound key,
`raw.check_results.observed`, the Data Docs built from the stored GX results) are masked
with the formats of the masked marts (`dbt_project/macros/masked_marts.sql`):

    phone    +79*******67      first 3 and last 2 characters; 6 characters or fewer are
                               extensions and queues, kept as they are
    email    i***@mail.ru      first character of the mailbox, then the domain
    inn      77******93        first 2 and last 2 characters (INN, KPP)
    account  ****************1234  last 4 characters (bank accounts)
    name     И*** П***         first character of each word

Every mask is idempotent (masking a masked value gives it back), so a value may be masked at
every place it passes without harm.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any


def mask_phone(value: str) -> str:
    if len(value) <= 6:
        return value
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


def mask_email(value: str) -> str:
    at = value.find("@")
    if at < 0:
        return "*" * len(value)
    return value[:1] + "***" + value[at:]


def mask_inn(value: str) -> str:
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_account(value: str) -> str:
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


def mask_name(value: str) -> str:
    return re.sub(r"(\w)[\w'-]*(\*\*\*)?", r"\1***", value)


MASKS: dict[str, Callable[[str], str]] = {
    "phone": mask_phone,
    "email": mask_email,
    "inn": mask_inn,
    "account": mask_account,
    "name": mask_name,
}
KINDS = tuple(MASKS)

# keys of GX result dictionaries that hold statistics, never values of the column
_STATS = re.compile(r"(^|_)(count|percent)(_[a-z]+)?$")


def mask_value(value: Any, kind: str | None) -> Any:
    """`value` masked as `kind` (a string), or unchanged when `kind` is None or it is null."""
    if kind is None or value is None:
        return value
    return MASKS[kind](str(value))


def mask_sample(
    value: Any,
    kind: str | None,
    masks: Mapping[str, str],
    columns: Collection[str] = (),
) -> Any:
    """A sample of values or rows with the sensitive ones masked.

    Scalars are masked as `kind` (the kind of the checked column, None when it is not
    sensitive); in dictionaries (rows of a compound key, GX's value counts) an entry named
    after a sensitive column is masked as that column, an entry named after another column
    of the table is kept, and any other entry (`value`) takes `kind`; statistics (`*_count`,
    `*_percent`) are kept.
    """
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if k in masks:
                out[k] = mask_sample(v, masks[k], masks, columns)
            elif k in columns or _STATS.search(str(k)):
                out[k] = mask_sample(v, None, masks, columns)
            else:
                out[k] = mask_sample(v, kind, masks, columns)
        return out
    if isinstance(value, (list, tuple)):
        return [mask_sample(v, kind, masks, columns) for v in value]
    if isinstance(value, (bool, int, float)) and kind is None:
        return value
    return mask_value(value, kind)
