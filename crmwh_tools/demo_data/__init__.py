"""Deterministic sample exports: a complete landing folder in every supported format.

One simulated company (managers, customers, deals, calls, invoices, payments) is
written the way each source system exports it (docs/sources.md), with a few deliberate
defects (see `faults.py`). The same seed and scale always give byte-identical files:
all randomness comes from `random.Random` streams derived from the seed, never the clock.

    generate(Path("sources/landing"), seed=42, scale="small")  # -> {file: data rows}
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .accounting import Accounting
from .bitrix import BitrixSnapshots, write_leads
from .config import SCALES
from .deals import iter_deals
from .faults import FaultPlan, duplicate_file, truncate_last_row
from .people import World, build_campaigns, build_products
from .salesforce import SalesforceExport
from .telephony import Telephony
from .writers import Output

__all__ = ["FOLDERS", "generate", "generate_with_faults"]

FOLDERS = ("crm_salesforce", "crm_bitrix", "telephony_asterisk", "telephony_cloud", "accounting_1c")


def generate(out_dir: Path, seed: int = 42, scale: str = "small") -> dict[str, int]:
    """Write sample exports into `out_dir` (one sub-folder per source system).

    Returns the number of data rows per written file (path relative to `out_dir`; for bank
    statements, the number of payment documents). Existing files of the same names are
    overwritten; nothing else in `out_dir` is touched.
    """
    counts, _ = generate_with_faults(out_dir, seed, scale)
    return counts


def generate_with_faults(
    out_dir: Path, seed: int = 42, scale: str = "small"
) -> tuple[dict[str, int], list[str]]:
    """`generate`, also returning the injected defects (file: how to spot it)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    cfg = SCALES[scale]
    out_dir = Path(out_dir)
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
    for rel, copy_name in (
        ("telephony_asterisk/Master_2025.csv", "Master_2025_copy.csv"),
        ("accounting_1c/statement_2026-10.txt", "statement_2026-10_copy.txt"),
    ):
        src = out_dir / rel
        dst = duplicate_file(src, copy_name, faults, rel)
        out.counts[str(dst.relative_to(out_dir))] = out.counts[rel]
    truncate_last_row(out_dir / "crm_salesforce/Task.csv", faults, "crm_salesforce/Task.csv")
    return dict(sorted(out.counts.items())), faults.notes
