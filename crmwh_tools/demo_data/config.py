"""Scales, the simulated period and the fixed vocabulary of the sample exports.

Everything that describes *the company being simulated* lives here, so that the writers
of each export format only decide how a fact is spelled in that system.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# The simulated year: 12 months ending on the export day (never the clock: deterministic).
START = dt.date(2025, 11, 21)
END = dt.date(2026, 11, 20)
EXPORT_AT = dt.datetime(2026, 11, 20, 21, 0)  # Moscow time of the last export
MSK_OFFSET = dt.timedelta(hours=3)  # Europe/Moscow, no DST since 2014
BITRIX_SINCE = dt.date(2026, 5, 1)  # the regional division started using Bitrix24
BITRIX_SNAPSHOT_DAYS = 45
BITRIX_KEEP_CLOSED_DAYS = 30
CLOUD_PBX_SINCE = dt.date(2026, 3, 1)  # team "Регионы" moved to the cloud PBX
ASTERISK_UPGRADE = dt.date(2026, 1, 1)  # Master_2025.csv (18 fields) before, Master.csv after


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

# Russian non-working days inside the period (production calendar 2025-2026).
HOLIDAYS = frozenset(
    [dt.date(2025, 12, 31)]
    + [dt.date(2026, 1, d) for d in range(1, 12)]
    + [dt.date(2026, m, d) for m, d in ((2, 23), (3, 9), (5, 1), (5, 11), (6, 12), (11, 4))]
)


def is_workday(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def workdays(first: dt.date = START, last: dt.date = END) -> list[dt.date]:
    out, day = [], first
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
