"""Bitrix24 daily deal snapshots and lead lists (docs/sources.md).

Windows-1251 (two days in UTF-8 with BOM), `;`, CRLF, decimal comma, Moscow time.
A snapshot lists the deals as they stand that day: open ones and those closed in the
last 30 days. Deals are fed one at a time and written to every snapshot that shows them.
"""

from __future__ import annotations

import datetime as dt
import random

from . import config as C
from . import vocab
from .deals import Deal
from .faults import FaultPlan
from .ids import NBSP, at_time, money_ru, phone_fmt, rng_for, ru_ts
from .people import Manager, World, sales_managers
from .writers import CsvOut, Output

DEALS = ["ID", "Название", "Стадия", "Сумма", "Валюта", "Ответственный", "Дата создания",
         "Дата изменения", "Источник", "Компания", "ИНН", "Телефон", "E-mail",
         "Причина отказа", "Направление", "Дней в стадии", "Комментарий"]  # fmt: skip
LEADS = ["ID", "Статус", "Название лида", "Имя", "Фамилия", "Дата создания", "Источник",
         "Рабочий телефон", "Мобильный телефон", "Рабочий e-mail", "Частный e-mail",
         "Ответственный", "Дата изменения", "Название компании", "Комментарий", "Должность",
         "UTM Source"]  # fmt: skip
USER_FIELD = "UF_CRM_1761955200"  # a custom field the admin added on the 1st of END's month
BOM_DAYS_BEFORE_END = (30, 29)  # export settings briefly changed: UTF-8 with BOM those days
ODD_DATES_DAYS_BEFORE_END = 24  # a few rows with `2026/10/27 10:00` style dates that day
TITLES = ["Поставка оборудования", "Продление лицензий", "Техподдержка", "Комплексный проект",
          "Расходные материалы", "Модернизация серверной", "Заявка с сайта"]  # fmt: skip
SNAPSHOT_HOUR = dt.time(23, 30)


def snapshot_days() -> list[dt.date]:
    first = C.END - dt.timedelta(days=C.BITRIX_SNAPSHOT_DAYS - 1)
    return [first + dt.timedelta(days=i) for i in range(C.BITRIX_SNAPSHOT_DAYS)]


class BitrixSnapshots:
    def __init__(self, out: Output, seed: int, faults: FaultPlan) -> None:
        self.seed, self.faults = seed, faults
        self.days = snapshot_days()
        self.user_field_since = C.month_start(C.END)
        self.odd_dates_day = C.END - dt.timedelta(days=ODD_DATES_DAYS_BEFORE_END)
        bom_days = {C.END - dt.timedelta(days=n) for n in BOM_DAYS_BEFORE_END}
        self.files: dict[dt.date, CsvOut] = {}
        self.sep: dict[dt.date, str] = {}
        for day in self.days:
            header = list(DEALS)
            if day >= self.user_field_since:
                header.insert(14, USER_FIELD)
            enc = "utf-8-sig" if day in bom_days else "cp1251"
            self.files[day] = out.russian(f"crm_bitrix/deals_{day:%Y-%m-%d}.csv", header, enc)
            self.sep[day] = NBSP if day.day % 3 == 0 else " "
        faults.note(f"crm_bitrix/deals_{min(bom_days):%Y-%m-%d}.csv (and next day)",
                    "UTF-8 with BOM instead of Windows-1251")  # fmt: skip
        faults.note(f"crm_bitrix/deals_{self.user_field_since:%Y-%m-%d}.csv and later",
                    f"unknown extra column {USER_FIELD!r} inserted before 'Направление'")  # fmt: skip
        faults.note(f"crm_bitrix/deals_{self.odd_dates_day:%Y-%m-%d}.csv",
                    "rows 1-3: 'Дата изменения' as YYYY/MM/DD HH:MM (quarantined)")  # fmt: skip
        self.first_cut = dt.datetime.combine(self.days[0], SNAPSHOT_HOUR)

    def close(self) -> None:
        for w in self.files.values():
            w.close()

    def deal(self, d: Deal) -> None:
        last = d.events[-1]
        if d.status != "open" and last.ts < self.first_cut - dt.timedelta(days=30):
            return  # closed before any snapshot could show it
        rng = rng_for(self.seed, "bx-deal", d.k)
        c, p = d.customer, d.contact
        title = rng.choice(TITLES)
        title = f"{title} — {c.core}" if rng.random() < 0.6 else f"Сделка #{d.id}"
        company = rng.choice([c.name_ru, c.name_ru.replace('"', "«", 1).replace('"', "»", 1),
                              f"{c.core} {c.form}" if c.form != "ИП" else c.name_ru])  # fmt: skip
        inn = c.inn if rng.random() > 0.05 else ""
        phone = phone_fmt(p.mobile, rng.choice(["bx", "bx_plus", "e164"]))
        if rng.random() < 0.25:
            phone += ", " + phone_fmt(c.phone, "dash")
        email = p.email.lower()
        source = C.LEAD_SOURCES[d.source][1]
        branch = "Регионы" if d.owner.team == 2 else "Общее"
        comment = rng.choice(["", "", "", "Клиент просит отсрочку", "Срочно!", "Тендер"])
        promo = rng.choice(["", "", "NOV26", "PARTNER10"])
        i, entered = 0, d.events[0].ts
        for day in self.days:
            cut = dt.datetime.combine(day, SNAPSHOT_HOUR)
            if d.created > cut:
                continue
            while i + 1 < len(d.events) and d.events[i + 1].ts <= cut:
                i += 1
                if d.events[i].stage != d.events[i - 1].stage:
                    entered = d.events[i].ts
            ev = d.events[i]
            closed = ev.stage in (C.BX_WON, C.BX_LOST)
            if closed and ev.ts.date() < day - dt.timedelta(days=C.BITRIX_KEEP_CLOSED_DAYS):
                continue
            w = self.files[day]
            modified = ru_ts(ev.ts + dt.timedelta(minutes=3))
            if day == self.odd_dates_day and w.rows < 3:
                modified = (ev.ts + dt.timedelta(minutes=3)).strftime("%Y/%m/%d %H:%M")
            row = [d.id, title, ev.stage, money_ru(ev.amount, self.sep[day]), "RUB",
                   d.owner.name, ru_ts(d.created), modified, source, company, inn, phone, email,
                   d.loss_reason if ev.stage == C.BX_LOST else "", branch,
                   str((day - entered.date()).days), comment]  # fmt: skip
            if day >= self.user_field_since:
                row.insert(14, promo)
            w.row(row)


def _lead_status(rng: random.Random, age_h: float, answer_h: float) -> str:
    if age_h < answer_h:
        return "Новый"
    if age_h < answer_h + 48:
        return "В работе"
    return rng.choice(["Обработан", "Качественный лид", "Некачественный лид", "Сконвертирован",
                       "Некачественный лид", "Качественный лид"])  # fmt: skip


def write_leads(out: Output, world: World, per_day: float) -> None:
    """Weekly lead lists; each lists the leads of the last 14 days as they stand that day."""
    seed = world.seed
    rng = rng_for(seed, "bx-leads")
    first = C.END - dt.timedelta(days=35)
    leads = []
    day, n = first, 0
    while day <= C.END:
        k = int(per_day * (1.0 if C.is_workday(day) else 0.3) * rng.uniform(0.6, 1.4) + 0.5)
        for _ in range(k):
            n += 1
            lr = rng_for(seed, "bx-lead", n)
            created = at_time(day, lr, 7.5, 22.0)
            pool = sales_managers(world.managers, day, 2)
            leads.append((20_000 + n * 2, created, lr.random(), lr.lognormvariate(1.5, 1.4),
                          pool[lr.randrange(len(pool))]))  # fmt: skip
        day += dt.timedelta(days=1)
    for f in range(4):
        export = C.END - dt.timedelta(days=7 * (3 - f))
        cut = dt.datetime.combine(export, dt.time(20, 0))
        w = out.russian(f"crm_bitrix/leads_{export:%Y-%m-%d}.csv", LEADS)
        for lead_id, created, u, answer_h, owner in leads:
            if not cut - dt.timedelta(days=14) <= created <= cut:
                continue
            lr = rng_for(seed, "bx-lead-row", lead_id)
            w.row(_lead_row(lr, world, lead_id, created, u, answer_h, owner, cut))
        w.close()


def _lead_row(lr: random.Random, world: World, lead_id: int, created: dt.datetime, u: float,
              answer_h: float, owner: Manager, cut: dt.datetime) -> list[str]:  # fmt: skip
    age_h = (cut - created).total_seconds() / 3600
    status = _lead_status(lr, age_h, answer_h)
    if u < 0.5:  # someone from a known customer
        c = world.pick_customer(lr, created.date())
        p = c.contacts[lr.randrange(len(c.contacts))]
        first, last, company, title = p.first, p.last, c.name_ru, p.title
        mobile, work_phone = p.mobile, c.phone
        work_mail = p.email if lr.random() < 0.5 else p.email.upper()
    else:
        first = lr.choice(vocab.MALE_FIRST + vocab.FEMALE_FIRST)
        last = lr.choice(vocab.LAST) + ("а" if first in vocab.FEMALE_FIRST else "")
        company = lr.choice(["", f'ООО "{lr.choice(vocab.COMPANY_ROOTS)}"'])
        title = lr.choice(vocab.JOB_TITLES + [""])
        mobile, work_phone = f"9{(lead_id * 69_069 + world.seed) % 10**9:09d}", ""
        work_mail = ""
    private = f"{vocab.translit(last).lower()}{lr.randrange(1, 99)}@{lr.choice(vocab.FREE_MAIL)}"
    source, source_bx, _ = lr.choice(C.LEAD_SOURCES)
    name = {"Web": "Заявка с сайта", "Phone Inquiry": "Входящий звонок"}.get(source, source_bx)
    mobiles = phone_fmt(mobile, lr.choice(["bx_plus", "bx", "e164"]))
    if lr.random() < 0.2:  # several phones in one cell
        mobiles += ", " + phone_fmt(f"9{lr.randrange(10**9):09d}", "dash")
    works = phone_fmt(work_phone, "dash") if work_phone else ""
    comment = lr.choice(
        [
            "",
            "",
            "Перезвонить после обеда",
            'Клиент просил перезвонить после обеда.\nИнтересует поставка "под ключ".',
            "Запрос КП на серверы;\nсрок — до конца месяца",
        ]
    )
    modified = created + dt.timedelta(hours=min(age_h, answer_h + lr.uniform(0, 30)))
    utm = {"Yandex.Direct": "yandex", "Advertisement": "vk_ads", "Web": "organic"}.get(source, "")
    return [str(lead_id), status, name, first, last, ru_ts(created), source_bx, works, mobiles,
            work_mail, private if lr.random() < 0.6 else "", owner.name, ru_ts(modified),
            company, comment, title, utm]  # fmt: skip
