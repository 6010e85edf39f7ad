"""The deliberate defects of the sample exports ("What arrives broken" in docs/sources.md).

Few and deterministic: each one is chosen by a fixed rule, noted in `FaultPlan.notes`
(file and how to spot it), and is either a row the ingestion must quarantine, a file it
must skip by checksum, or a value the warehouse must handle (deleted record, unknown
stage, changed amount, duplicate row).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from . import config as C

if TYPE_CHECKING:
    from .deals import Deal

# Row numbers (1-based, data rows) written twice in a file: exact duplicate rows.
DUPLICATE_ROWS = {
    "crm_salesforce/Task.csv": (40, 41, 700),
    "telephony_asterisk/Master.csv": (500, 5_000),
    "accounting_1c/invoices.csv": (25,),
}
DUPLICATE_SNAPSHOT_DAYS_BEFORE_END = 17  # and row 7 of that day's Bitrix24 deal snapshot


def duplicate_rows_of(file: str) -> tuple[int, ...]:
    """The data rows of `file` written twice (none for most files)."""
    snapshot = C.END - dt.timedelta(days=DUPLICATE_SNAPSHOT_DAYS_BEFORE_END)
    if file == f"crm_bitrix/deals_{snapshot:%Y-%m-%d}.csv":
        return (7,)
    return DUPLICATE_ROWS.get(file, ())


class FaultPlan:
    def __init__(self) -> None:
        self.quota = {"sf_rogue": 3, "bx_rogue": 2, "sf_deleted": 4}
        self.notes: list[str] = []

    def note(self, file: str, what: str) -> None:
        self.notes.append(f"{file}: {what}")

    def take(self, key: str) -> bool:
        if self.quota.get(key, 0) > 0:
            self.quota[key] -= 1
            return True
        return False

    def duplicate_rows(self, file: str) -> frozenset[int]:
        rows = frozenset(duplicate_rows_of(file))
        if rows:
            shown = ", ".join(str(r) for r in sorted(rows))
            self.note(file, f"exact duplicate of data row(s) {shown} right after it")
        return rows

    def mark_deal(self, deal: Deal) -> None:
        last = deal.events[-1]
        if deal.crm == "sf" and deal.status == "open" and last.level >= 6 and deal.k > 50:
            if self.take("sf_rogue"):
                last.stage = C.SF_ROGUE_STAGE[0]
                self.note("crm_salesforce/Opportunity.csv",
                          f"Id {deal.id} in stage {last.stage!r} (also its last history row)")  # fmt: skip
        if (
            deal.crm == "bx"
            and deal.status == "open"
            and last.level >= 3
            and last.ts.date() >= C.END - dt.timedelta(days=20)
            and self.take("bx_rogue")
        ):
            last.stage = C.BX_ROGUE_STAGE
            self.note("crm_bitrix/deals_*.csv",
                      f"ID {deal.id} in stage {last.stage!r} since {last.ts:%d.%m.%Y}")  # fmt: skip
        if deal.crm == "sf" and deal.status == "lost" and deal.k % 97 == 11:
            if self.take("sf_deleted"):
                deal.deleted = True
                self.note("crm_salesforce/Opportunity.csv",
                          f"Id {deal.id} IsDeleted=true (and its history rows)")  # fmt: skip


def duplicate_file(src: Path, new_name: str, plan: FaultPlan, rel: str) -> Path:
    """The same export delivered twice under another name (byte-identical)."""
    dst = src.with_name(new_name)
    shutil.copyfile(src, dst)
    copy_rel = f"{rel.rsplit('/', 1)[0]}/{new_name}"
    plan.note(copy_rel, f"byte-identical copy of {src.name} (skip by checksum)")
    return dst


def truncate_last_row(path: Path, plan: FaultPlan, rel: str) -> None:
    """Cut the file inside a quoted field of its last row, with no trailing newline."""
    size = path.stat().st_size
    with path.open("rb+") as fh:
        fh.seek(max(0, size - 65_536))
        tail = fh.read()
        body = tail.rstrip(b"\r\n")
        start = body.rfind(b"\n") + 1
        last = body[start:]
        cut = -1
        for _ in range(4):  # inside the 4th quoted field of the row
            cut = last.find(b'","', cut + 1)
        cut = cut + 5 if cut >= 0 else len(last) // 2
        fh.truncate(size - len(tail) + start + cut)
    plan.note(rel, "last row cut off inside a quoted field, no trailing newline")
