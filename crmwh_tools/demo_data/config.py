"""Scales, the simulated period and the fixed vocabulary of the sample exports.

Everything that describes *the company being simulated* lives here, so that the writers
of each export format only decide how a fact is spelled in that system.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: The end date of the sample exports as first published (2025-11-21..2026-11-20); tests pin
#: it (`crmwh demo-data --end-date 2026-11-20`) to get the files and figures they assert.
REFERENCE_END = dt.date(2026, 11, 20)
COMPANY_TZ = "Europe/Moscow"  # the simulated company (the shipped settings.yml has the same)
MSK_OFFSET = dt.timedelta(hours=3)  # Europe/Moscow, no DST since 2014
BITRIX_SNAPSHOT_DAYS = 45
BITRIX_KEEP_CLOSED_DAYS = 30

# The simulated year: 12 months ending on the export day END. Every date of the company's
# history is placed relative to END (`set_end`), never read from the clock inside the
# generator, so a seed and an end date always give the same files. Module-level values
# so the writers read `C.END`; `set_end` rebinds them before a generation.
START: dt.date
END: dt.date
EXPORT_AT: dt.datetime  # Moscow time of the last export: 21:00 on END
BITRIX_SINCE: dt.date  # the regional division started using Bitrix24 (END's month - 6)
CLOUD_PBX_SINCE: dt.date  # team "Регионы" moved to the cloud PBX (END's month - 8)
ASTERISK_UPGRADE: dt.date  # 18-field Master_<year>.csv before, 21-field Master.csv after
HOLIDAYS: frozenset[dt.date] = frozenset()


def today_in_company() -> dt.date:
    """Today's date in the company's time zone (the default end date of `crmwh demo-data`)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(COMPANY_TZ)).date()


def month_start(day: dt.date, months_back: int = 0) -> dt.date:
    """The first day of `day`'s month, `months_back` months earlier."""
    n = day.year * 12 + day.month - 1 - months_back
    return dt.date(n // 12, n % 12 + 1, 1)


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def set_end(end: dt.date) -> None:
    """Place the simulated year so that it ends on `end` (the day of the last export)."""
    global START, END, EXPORT_AT, BITRIX_SINCE, CLOUD_PBX_SINCE, ASTERISK_UPGRADE, HOLIDAYS
    END = end
    START = end - dt.timedelta(days=364)
    EXPORT_AT = dt.datetime.combine(end, dt.time(21, 0))
    BITRIX_SINCE = month_start(end, 6)
    CLOUD_PBX_SINCE = month_start(end, 8)
    ASTERISK_UPGRADE = month_start(end, 10)
    HOLIDAYS = frozenset(d for y in range(START.year, end.year + 1) for d in holidays(y))


def asterisk_old_file() -> str:
    """The pre-upgrade CDR log, renamed by the year its last day falls in."""
    return f"Master_{(ASTERISK_UPGRADE - dt.timedelta(days=1)).year}.csv"


# Russian non-working days: the production calendars of 2025 and 2026 as published (public
# holidays and the days off moved to bridge them); other years approximate them by the
# public holidays of the Labour Code, a Saturday or Sunday holiday moving to the next Monday.
_CALENDARS = {
    2025: [(1, d) for d in range(1, 9)] + [(5, 1), (5, 2), (5, 8), (5, 9), (6, 12), (6, 13),
                                           (11, 3), (11, 4), (12, 31)],
    2026: [(1, d) for d in range(1, 12)] + [(2, 23), (3, 9), (5, 1), (5, 11), (6, 12),
                                            (11, 4), (12, 31)],
}  # fmt: skip
_PUBLIC_HOLIDAYS = [(1, d) for d in range(1, 9)] + [(2, 23), (3, 8), (5, 1), (5, 9), (6, 12),
                                                    (11, 4)]  # fmt: skip


def holidays(year: int) -> list[dt.date]:
    if year in _CALENDARS:
        return [dt.date(year, m, d) for m, d in _CALENDARS[year]]
    out: list[dt.date] = []
    for m, d in _PUBLIC_HOLIDAYS:
        day = dt.date(year, m, d)
        if m != 1:  # the January days off are moved by decree each year, not by this rule
            while day.weekday() >= 5 or day in out:
                day += dt.timedelta(days=1)
        out.append(day)
    return out


set_end(REFERENCE_END)


@dataclass(frozen=True)
class Scale:
    customers: int
    deals: int
    cdr_rows: int  # Asterisk rows aimed at (calls x legs)
    open_leads: int  # Salesforce leads that are not converted into deals
    bitrix_share: float  # share of deals created since BITRIX_SINCE that live in Bitrix
    bitrix_leads_per_day: float
    repeat_invoices: int  # invoices of repeat orders with no CRM deal behind them
    money_factor: float  # scales fixed costs (rent, payroll, marketing) with the business


SCALES: dict[str, Scale] = {
    "small": Scale(700, 2_000, 20_000, 1_500, 0.30, 4, 300, 1.0),
    "medium": Scale(12_000, 50_000, 1_000_000, 30_000, 0.20, 40, 15_000, 25.0),
    "large": Scale(150_000, 1_000_000, 20_000_000, 500_000, 0.08, 250, 1_600_000, 500.0),
}


def is_workday(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def workdays(first: dt.date | None = None, last: dt.date | None = None) -> list[dt.date]:
    """Working days from `first` to `last` (default: the whole simulated year)."""
    out, day, last = [], first or START, last or END
    while day <= last:
        if is_workday(day):
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def next_workday(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while not is_workday(day):
        day += dt.timedelta(days=1)
    return day


# --- Salesforce standard sales process and Bitrix24 default deal stages -------------
SF_STAGES = [
    # (MasterLabel, DefaultProbability, ForecastCategory)
    ("Prospecting", 10, "Pipeline"),
    ("Qualification", 10, "Pipeline"),
    ("Needs Analysis", 20, "Pipeline"),
    ("Value Proposition", 50, "Pipeline"),
    ("Id. Decision Makers", 60, "Pipeline"),
    ("Perception Analysis", 70, "Pipeline"),
    ("Proposal/Price Quote", 75, "BestCase"),
    ("Negotiation/Review", 90, "Commit"),
]
SF_WON = ("Closed Won", 100, "Closed")
SF_LOST = ("Closed Lost", 0, "Omitted")
SF_ROGUE_STAGE = ("Legal Review", 80, "Commit")  # fault: not in the configured pipeline

BX_STAGES = ["Новая", "Подготовка документов", "Счёт на предоплату", "В работе", "Финальный счёт"]
BX_WON, BX_LOST = "Сделка успешна", "Сделка провалена"
BX_ROGUE_STAGE = "Согласование"  # fault: not in the configured pipeline

# LeadSource picklist (Salesforce) and the Bitrix "Источник" spelling of the same channel.
LEAD_SOURCES = [
    # (Salesforce, Bitrix, weight)
    ("Web", "Веб-сайт", 24),
    ("Phone Inquiry", "Звонок", 22),
    ("Partner Referral", "Рекомендация партнёра", 12),
    ("Advertisement", "Реклама", 10),
    ("Yandex.Direct", "Яндекс.Директ", 22),
    ("Other", "Другое", 10),
]

LOSS_REASONS_SF = [
    "Price", "price too high", "Too expensive", "Competitor", "went with competitor",
    "Competitor - lower price", "No budget", "no budget this year", "Budget cut",
    "Product does not fit", "product doesn't fit requirements", "No follow-up",
    "Manager did not follow up", "no callback from sales rep", "Logistics",
    "Delivery terms too long", "shipping costs", "",
]  # fmt: skip
LOSS_REASONS_BX = [
    "Дорого", "дорого, ушли к конкуренту", "Выбрали конкурента", "Цена выше рынка",
    "Нет бюджета", "нет бюджета до следующего года", "Не подошёл продукт",
    "Продукт не подходит под требования", "Менеджер не перезвонил", "не обработан вовремя",
    "Сроки поставки", "Дорогая доставка", "",
]  # fmt: skip

CURRENCIES = [("RUB", 1.0, True), ("USD", 0.0109, False), ("EUR", 0.0101, False)]
RATE = {code: rate for code, rate, _ in CURRENCIES}

# The company whose CRM, PBX and accounting are simulated.
OUR_NAME = 'ООО "ТехноСнаб"'
OUR_INN_BODY = "771412345"  # check digit appended by ids.inn10
OUR_KPP = "771401001"
OUR_ACCOUNT = "40702810938000012345"
OUR_BANK = "ПАО СБЕРБАНК"
OUR_BIK = "044525225"
OUR_CORR = "30101810400000000225"
OUR_DID = "74951234500"  # the public number customers dial
