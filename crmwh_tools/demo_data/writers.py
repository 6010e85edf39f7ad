"""Streaming writers: CSV files opened once and fed row by row, and a day-ordered spool."""

from __future__ import annotations

import csv as csvlib
import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path

from .faults import FaultPlan


class CsvOut:
    """One export file: header, rows as they come, exact duplicates where the plan says."""

    def __init__(self, out: Output, rel: str, header: list[str] | None, *, encoding: str,
                 delimiter: str, crlf: bool, quoting: int) -> None:  # fmt: skip
        self.out, self.rel = out, rel
        path = out.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("w", encoding=encoding, newline="", errors="strict")
        self.w = csvlib.writer(
            self.fh, delimiter=delimiter, quoting=quoting, lineterminator="\r\n" if crlf else "\n"
        )
        self.dups = out.faults.duplicate_rows(rel)
        if header:
            self.w.writerow(header)
        self.rows = 0

    def row(self, values: Iterable[object]) -> None:
        values = list(values)
        self.w.writerow(values)
        self.rows += 1
        if self.rows in self.dups:
            self.w.writerow(values)
            self.rows += 1

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()
            self.out.counts[self.rel] = self.rows


class Output:
    """The landing folder being written, and the row count of every file in it."""

    def __init__(self, root: Path, faults: FaultPlan) -> None:
        self.root = root
        self.faults = faults
        self.counts: dict[str, int] = {}

    def csv(self, rel: str, header: list[str] | None, *, encoding: str = "utf-8",
            delimiter: str = ",", crlf: bool = False,
            quoting: int = csvlib.QUOTE_MINIMAL) -> CsvOut:  # fmt: skip
        return CsvOut(self, rel, header, encoding=encoding, delimiter=delimiter, crlf=crlf,
                      quoting=quoting)  # fmt: skip

    def salesforce(self, name: str, header: list[str], encoding: str = "utf-8") -> CsvOut:
        """Salesforce Data Export: every value quoted, comma, LF."""
        return self.csv(
            f"crm_salesforce/{name}", header, encoding=encoding, quoting=csvlib.QUOTE_ALL
        )

    def russian(self, rel: str, header: list[str], encoding: str = "cp1251",
                quoting: int = csvlib.QUOTE_MINIMAL) -> CsvOut:  # fmt: skip
        """1C / Bitrix24 style: Windows-1251, `;`, CRLF."""
        return self.csv(rel, header, encoding=encoding, delimiter=";", crlf=True, quoting=quoting)


class DaySpool:
    """Records keyed by day, spooled to disk per month and read back in day order.

    Bank statements list payments by date, but payments are generated deal by deal; the
    spool orders them with a bounded number of open files and no table in memory.
    """

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, object] = {}

    def add(self, day: dt.date, text: str) -> None:
        key = f"{day:%Y-%m}"
        fh = self.files.get(key)
        if fh is None:
            fh = self.files[key] = (self.dir / f"{key}.spool").open("w", encoding="utf-8")
        fh.write(f"{day:%Y%m%d}\t{text}\n")  # type: ignore[attr-defined]

    def months(self) -> list[str]:
        return sorted(self.files)

    def read_month(self, key: str) -> Iterator[tuple[dt.date, str]]:
        self.files[key].close()  # type: ignore[attr-defined]
        src = self.dir / f"{key}.spool"
        days: dict[str, object] = {}
        with src.open(encoding="utf-8") as fh:
            for line in fh:
                day = line[:8]
                out = days.get(day)
                if out is None:
                    out = days[day] = (self.dir / f"{key}-{day}.day").open("w", encoding="utf-8")
                out.write(line)  # type: ignore[attr-defined]
        for out in days.values():
            out.close()  # type: ignore[attr-defined]
        src.unlink()
        for day in sorted(days):
            path = self.dir / f"{key}-{day}.day"
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    yield dt.datetime.strptime(day, "%Y%m%d").date(), line[9:].rstrip("\n")
            path.unlink()
