"""Deterministic sample exports: a complete landing folder in every supported format.

One simulated company (managers, customers, deals, calls, invoices, payments) is
written the way each source system exports it (docs/sources.md), with a few deliberate
defects (see `faults.py`). The simulated year ends on `end`, the day of the last export
(`crmwh demo-data` passes today's date in the company's time zone, so a fresh demo is as
fresh as a working export feed; `--end-date` pins it). The same seed, scale and end date
always give byte-identical files: all randomness comes from `random.Random` streams derived
from the seed, never the clock.

    generate(Path("sources/landing"), seed=42, scale="small", end=dt.date(2026, 11, 20))
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from . import config as C
from .accounting import Accounting
from .bitrix import BitrixSnapshots, write_leads
from .config import REFERENCE_END, SCALES
from .deals import iter_deals
from .faults import FaultPlan, duplicate_file, truncate_last_row
from .people import World, build_campaigns, build_products
from .salesforce import SalesforceExport
from .telephony import Telephony
from .writers import Output

__all__ = ["FOLDERS", "REFERENCE_END", "generate", "generate_with_faults", "previous_end"]

FOLDERS = ("crm_salesforce", "crm_bitrix", "telephony_asterisk", "telephony_cloud", "accounting_1c")


def generate(
    out_dir: Path, seed: int = 42, scale: str = "small", end: dt.date = REFERENCE_END
) -> dict[str, int]:
    """Write sample exports into `out_dir` (one sub-folder per source system), the last
    of them exported on `end`.

    Returns the number of data rows per written file (path relative to `out_dir`; for bank
    statements, the number of payment documents). Existing files of the same names are
    overwritten; nothing else in `out_dir` is touched.
    """
    counts, _ = generate_with_faults(out_dir, seed, scale, end)
    return counts


def previous_end(out_dir: Path) -> dt.date | None:
    """The end date of sample exports already in `out_dir` (its newest Bitrix24 snapshot),
    or None. Writing another year over them would mix two simulated companies in one
    landing folder; the same end date rewrites the same bytes, which a run skips."""
    days = []
    for path in (Path(out_dir) / "crm_bitrix").glob("deals_*.csv"):
        try:
            days.append(dt.date.fromisoformat(path.stem.removeprefix("deals_")))
        except ValueError:
            continue
    return max(days, default=None)


def generate_with_faults(
    out_dir: Path, seed: int = 42, scale: str = "small", end: dt.date = REFERENCE_END
) -> tuple[dict[str, int], list[str]]:
    """`generate`, also returning the injected defects (file: how to spot it)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    before = C.END
    C.set_end(end)
    try:
        return _generate(Path(out_dir), seed, SCALES[scale])
    finally:
        C.set_end(before)


def _generate(out_dir: Path, seed: int, cfg: C.Scale) -> tuple[dict[str, int], list[str]]:
    for folder in FOLDERS:
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    faults = FaultPlan()
    out = Output(out_dir, faults)
    world = World(seed, cfg.customers)
    products = build_products()
    campaigns = build_campaigns(cfg.money_factor)

    with tempfile.TemporaryDirectory(prefix="demo-data-") as tmp:
        sf = SalesforceExport(out, world)
        sf.write_static(products, campaigns)
        sf.write_customers()
        bx = BitrixSnapshots(out, seed, faults)
        acc = Accounting(out, world, Path(tmp), cfg.money_factor)
        for deal in iter_deals(world, products, campaigns, cfg.deals, cfg.bitrix_share, faults):
            if deal.crm == "sf":
                sf.deal(deal)
            else:
                bx.deal(deal)
            acc.deal(deal)
        sf.open_leads(cfg.open_leads)
        sf.close()
        bx.close()
        write_leads(out, world, cfg.bitrix_leads_per_day)
        acc.repeat_invoices(cfg.repeat_invoices)
        acc.expenses()
        acc.product_costs(products)
        acc.close(out_dir)
        Telephony(out, world, cfg.cdr_rows).run()

    # whole files delivered twice, and one cut off mid-row
    old_cdr = C.asterisk_old_file().removesuffix(".csv")
    statement = f"statement_{C.month_start(C.END, 1):%Y-%m}"  # the month before the last
    for rel, copy_name in (
        (f"telephony_asterisk/{old_cdr}.csv", f"{old_cdr}_copy.csv"),
        (f"accounting_1c/{statement}.txt", f"{statement}_copy.txt"),
    ):
        src = out_dir / rel
        dst = duplicate_file(src, copy_name, faults, rel)
        out.counts[str(dst.relative_to(out_dir))] = out.counts[rel]
    truncate_last_row(out_dir / "crm_salesforce/Task.csv", faults, "crm_salesforce/Task.csv")
    return dict(sorted(out.counts.items())), faults.notes
