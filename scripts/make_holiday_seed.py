"""Write `dbt_project/seeds/core/holidays.csv`: the national calendar the working hours use.

Why a seed and not the `holidays` package at run time: dbt (and a later Spark build) reads
plain tables, the calendar must be reviewable in git, and a government decree that moves
a day off is a one-line edit to a CSV rather than a package upgrade.

One row per exceptional date of a country:

- `public_holiday`: a non-working public holiday (Russia: 1–8 January, 23 February, …);
- `day_off`: a non-working day that is not itself a holiday: a holiday moved off a
  weekend ("observed") or a day off transferred by decree ("substituted");
- `working_weekend`: a Saturday/Sunday that is a working day because a day off was
  transferred from it (Russia's "рабочая суббота"). The `holidays` package exposes these
  as `weekend_workdays` (known for the years a decree exists; the package version pins
  which decrees are known). They count as working days in `int_working_calendar`.

Re-run after upgrading `holidays` (new decrees are published each autumn for the next
year) or to add a country; the configured country is dbt var `country` (settings.yml
`company.country`). Shortened pre-holiday days (one hour shorter in Russia) are not
modelled: the package does not expose them.

    .venv/bin/python scripts/make_holiday_seed.py [--countries RU] [--start 2015] [--end 2030]
"""

from __future__ import annotations

import argparse
import csv
from datetime import date
from pathlib import Path

import holidays

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "dbt_project" / "seeds" / "core" / "holidays.csv"
COLUMNS = ["country", "calendar_date", "day_type", "name", "local_name"]
LOCAL_LANGUAGE = {"RU": "ru", "BY": "ru", "KZ": "ru", "UA": "uk"}


def _day_type(name: str) -> str:
    lowered = name.lower()
    if "substituted" in lowered or "observed" in lowered or "day off" in lowered:
        return "day_off"
    return "public_holiday"


def holiday_rows(country: str, years: range) -> list[dict[str, str]]:
    """Exceptional dates of one country, sorted by date (several holidays on a date joined)."""
    english = holidays.country_holidays(country, years=years, language="en_US")
    language = LOCAL_LANGUAGE.get(country)
    local = (
        holidays.country_holidays(country, years=years, language=language)
        if language and language in english.supported_languages
        else english
    )
    rows: dict[date, dict[str, str]] = {}
    for day, name in english.items():
        rows[day] = {
            "country": country,
            "calendar_date": day.isoformat(),
            "day_type": _day_type(name),
            "name": name,
            "local_name": local.get(day, name),
        }
    for day in getattr(english, "weekend_workdays", set()):
        if day.year not in years or day in rows:
            continue
        rows[day] = {
            "country": country,
            "calendar_date": day.isoformat(),
            "day_type": "working_weekend",
            "name": "Working day (transferred day off)",
            "local_name": "Рабочий день (перенос выходного)" if language == "ru" else "",
        }
    return [rows[d] for d in sorted(rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--countries", nargs="+", default=["RU"])
    parser.add_argument("--start", type=int, default=2015)
    parser.add_argument("--end", type=int, default=2030)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    years = range(args.start, args.end + 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        total = 0
        for country in args.countries:
            rows = holiday_rows(country.upper(), years)
            writer.writerows(rows)
            total += len(rows)
    print(f"wrote {total} rows ({', '.join(args.countries)}, {args.start}-{args.end}) "
          f"with holidays {holidays.__version__} to {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
