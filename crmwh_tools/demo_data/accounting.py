"""1C accounting exports: invoices (3b), payments into bank statements (3a), expenses (3c)
and product costs (3d). Invoices follow won deals; payments follow invoices, sometimes
partly, late, twice, for two invoices at once, more than due, or never.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
import zipfile
from array import array
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from . import config as C
from .bank import BANKS, SEP, US, Party, Statements, num
from .deals import Deal
from .ids import inn_typo, money_ru, rng_for, ru_date
from .people import Customer, Manager, Product, World
from .writers import CsvOut, DaySpool, Output

INVOICES = ["Номер", "Дата", "Контрагент", "ИНН", "Сумма", "НДС", "Валюта", "Срок оплаты",
            "Ответственный", "Сделка"]  # fmt: skip
ODD_DATE_INVOICE = 40  # this invoice's date is written 2026-03-05 style (quarantined)
BROKEN_AMOUNT_AFTER = 60  # a draft invoice with Сумма = н/д follows this one


def _workday_on_or_after(day: dt.date) -> dt.date:
    return day if C.is_workday(day) else C.next_workday(day)


def customer_party(c: Customer) -> Party:
    bank, bik, corr = BANKS[c.idx % len(BANKS)]
    prefix = "40802810" if c.form == "ИП" else "40702810"
    return Party(c.name_ru, c.inn, c.kpp, f"{prefix}{(c.idx * 7_919_113) % 10**12:012d}",
                 bank, bik, corr)  # fmt: skip


class Accounting:
    def __init__(self, out: Output, world: World, workdir: Path, money_factor: float) -> None:
        self.out, self.world, self.seed = out, world, world.seed
        self.csv = out.russian("accounting_1c/invoices.csv", INVOICES)
        # the invoices of END's quarter come as an Excel register
        self.xlsx_from = C.quarter_start(C.END)
        quarter = (self.xlsx_from.month + 2) // 3
        self.xlsx_rel = f"accounting_1c/invoices_{self.xlsx_from.year}-Q{quarter}.xlsx"
        self.wb = Workbook(write_only=True)
        self.ws = self.wb.create_sheet("Счета")
        self.ws.append(INVOICES)
        self.xlsx_rows = 0
        self.bank = Statements(workdir / "bank", int(30_000_000_00 * money_factor))
        self.invoices = DaySpool(workdir / "invoices")
        self.numbers = array("q")  # spool order -> invoice number (given in date order)
        self.mf = money_factor
        out.faults.note("accounting_1c/invoices.csv",
                        f"invoice № {ODD_DATE_INVOICE}: Дата as YYYY-MM-DD (quarantined)")  # fmt: skip
        out.faults.note("accounting_1c/invoices.csv",
                        f"a draft invoice after № {BROKEN_AMOUNT_AFTER} with Сумма 'н/д' (quarantined)")  # fmt: skip

    # --- invoices ------------------------------------------------------------------------
    def _invoice(self, rng: random.Random, day: dt.date, c: Customer, amount: int,
                 currency: str, manager: Manager, deal_ref: str) -> int:  # fmt: skip
        """Spool one invoice; its number is given in date order when the register is written."""
        g = len(self.numbers)
        self.numbers.append(0)
        vat = round(amount * 20 / 120)
        due = day + dt.timedelta(days=rng.choice([5, 10, 10, 14, 30]))
        inn = c.inn if rng.random() > 0.005 else inn_typo(c.inn, rng)
        fields = [str(g), c.name_ru, inn, str(amount), str(vat), currency, due.isoformat(),
                  f"{manager.last} {manager.first}", deal_ref, rng.choice(["", "", " "])]  # fmt: skip
        self.invoices.add(day, SEP.join(fields))
        return g

    def _write_invoices(self, root: Path) -> None:
        no = 0
        for key in self.invoices.months():
            for day, text in self.invoices.read_month(key):
                g, name, inn, amount, vat, currency, due, who, ref, sep = text.split(SEP)
                no += 1
                self.numbers[int(g)] = no
                amount_k, vat_k, due_d = int(amount), int(vat), dt.date.fromisoformat(due)
                if day >= self.xlsx_from:
                    self.ws.append([str(no), _cell(self.ws, day), name, inn, amount_k / 100,
                                    vat_k / 100, currency, _cell(self.ws, due_d), who, ref])  # fmt: skip
                    self.xlsx_rows += 1
                    continue
                shown = day.isoformat() if no == ODD_DATE_INVOICE else ru_date(day)
                self.csv.row([str(no), shown, name, inn, money_ru(amount_k, sep),
                              money_ru(vat_k, sep), currency, ru_date(due_d), who, ref])  # fmt: skip
                if no == BROKEN_AMOUNT_AFTER:
                    self.csv.row([f"{no}-Ч", ru_date(day), name, inn, "н/д", "", currency, "",
                                  who, ""])  # fmt: skip

    def deal(self, d: Deal) -> None:
        """Invoices of a won deal, and what the customer paid for them."""
        if d.status != "won" or d.deleted:
            return
        rng = rng_for(self.seed, "1c-deal", d.k)
        won = _workday_on_or_after(d.closed_on + dt.timedelta(days=rng.choice([0, 0, 1, 2, 3])))
        if won > C.END:
            return
        r = rng.random()
        ref = d.id if r < 0.7 else (d.id[:15] if d.crm == "sf" and r < 0.85 else "")
        if d.crm == "bx" and r >= 0.7:
            ref = d.id if r < 0.85 else ""
        c = d.customer
        if rng.random() < 0.35:  # prepayment invoice when the offer was made, then the rest
            level = 2 if d.crm == "bx" else 6
            at = d.stage_reached(level)
            pre_day = _workday_on_or_after(at.date() if at else won - dt.timedelta(days=5))
            share = rng.choice([30, 50, 50, 70])
            first = d.amount * share // 100
            n1 = self._invoice(rng, pre_day, c, first, d.currency, d.owner, ref)
            n2 = self._invoice(rng, won, c, d.amount - first, d.currency, d.owner, ref)
            if rng.random() < 0.3:  # one payment for both
                pay = won + dt.timedelta(days=int(rng.lognormvariate(2.0, 0.6)))
                self._pay(rng, pay, c, self._rub(d.amount, d.currency),
                          rng.choice([f"Оплата по сч. {num(n1)}, {num(n2)}",
                                      f"Оплата по счетам № {num(n1)} и № {num(n2)}, в т.ч. НДС 20%"]))  # fmt: skip
                return
            self._settle(rng, n1, pre_day, c, first, d.currency, prepay=True)
            self._settle(rng, n2, won, c, d.amount - first, d.currency)
            return
        no = self._invoice(rng, won, c, d.amount, d.currency, d.owner, ref)
        self._settle(rng, no, won, c, d.amount, d.currency)

    def repeat_invoices(self, n: int) -> None:
        """Repeat orders and renewals billed in 1C without a CRM deal."""
        days = C.workdays()
        for j in range(n):
            rng = rng_for(self.seed, "1c-repeat", j)
            day = days[min(len(days) - 1, int((j + rng.random()) * len(days) / n))]
            c = self.world.pick_customer(rng, day)
            manager = self.world.managers[c.owner]
            amount = rng.choice([28_000, 42_000, 18_000, 6_400, 96_000, 14_800]) * 100
            amount = amount * rng.randint(1, 6)
            no = self._invoice(rng, day, c, amount, "RUB", manager, "")
            self._settle(rng, no, day, c, amount, "RUB")

    def _rub(self, amount: int, currency: str) -> int:
        return round(amount / C.RATE[currency])

    def _settle(self, rng: random.Random, no: int, day: dt.date, c: Customer, amount: int,
                currency: str, prepay: bool = False) -> None:  # fmt: skip
        rub = self._rub(amount, currency)
        if currency != "RUB":  # paid in roubles at the rate of the payment day
            rub = round(rub * rng.uniform(0.98, 1.02))
        lag = dt.timedelta(days=int(rng.lognormvariate(2.1, 0.8)))
        purpose = _purpose(rng, no, day, rub, prepay)
        r = rng.random()
        if r < 0.72:
            self._pay(rng, day + lag, c, rub, purpose)
        elif r < 0.80:  # in two parts; the second sometimes never comes
            part = rub * rng.choice([40, 50, 60]) // 100
            self._pay(
                rng, day + lag, c, part, f"Частичная оплата по счету № {num(no)} от {ru_date(day)}"
            )
            if rng.random() < 0.75:
                later = day + lag + dt.timedelta(days=rng.randint(7, 45))
                self._pay(
                    rng, later, c, rub - part, f"Доплата по счету № {num(no)} от {ru_date(day)}"
                )
        elif r < 0.82:  # over-payment
            extra = rng.choice([100_000, rub // 50, 50_000])
            self._pay(rng, day + lag, c, rub + extra, purpose)
        elif r < 0.84:  # the payer's own number instead of ours: no invoice number at all
            self._pay(
                rng, day + lag, c, rub, f"Оплата по договору поставки № Д-{no % 97 + 1}/{day.year}"
            )
        # else: not paid (yet)

    def _pay(self, rng: random.Random, day: dt.date, c: Customer, rub: int, purpose: str) -> None:
        day = _workday_on_or_after(day)
        if day > C.END:
            return
        payer = customer_party(c)
        if rng.random() < 0.01:
            payer.inn = inn_typo(c.inn, rng)
        section = "Платежное требование" if rng.random() < 0.02 else "Платежное поручение"
        self.bank.document(rng, day, rub, payer, US, purpose, str(rng.randint(1, 9999)), section)

    # --- costs: expenses register and outgoing payments ----------------------------------
    def expenses(self) -> None:
        w = self.out.russian("accounting_1c/expenses.csv", ["Дата", "Статья затрат", "Канал",
                                                            "Сумма", "Контрагент"])  # fmt: skip
        rng = rng_for(self.seed, "1c-expenses")
        yandex = Party('ООО "ЯНДЕКС"', "7736207543", "770401001", "40702810938000017990")
        items = [
            # (item, channel, counterparty, INN, monthly amount in roubles, days of month)
            ("Аренда офиса", "", 'ООО "БЦ Северное сияние"', "7715123451", 850_000, (1,)),
            ("Заработная плата", "", "Сотрудники (зарплатный проект)", "", 2_400_000, (5, 20)),
            ("Услуги связи", "", 'ПАО "МТС"', "7740000076", 45_000, (10,)),
            ("Реклама", "Яндекс.Директ", yandex.name, yandex.inn, 110_000, (3, 10, 17, 24)),
            ("Реклама", "Контекстная реклама", 'ООО "ВК"', "7743001840", 250_000, (8,)),
            ("Продвижение сайта", "SEO", 'ООО "Сеопульт"', "7726372636", 120_000, (12,)),
            ("Агентское вознаграждение", "Партнёры", 'ООО "Партнёр-Консалт"', "7701049857",
             180_000, (25,)),
        ]  # fmt: skip
        month = dt.date(C.START.year, C.START.month, 1)
        while month <= C.END:
            for item, channel, who, inn, rub, mdays in items:
                for mday in mdays:
                    day = _workday_on_or_after(month.replace(day=mday))
                    if not C.START <= day <= C.END:
                        continue
                    kop = int(rub * 100 * self.mf * rng.uniform(0.85, 1.15)) // 100 * 100
                    self._expense(rng, w, day, item, channel, who, inn, kop)
            if month.month in (4, 10):  # trade shows
                day = _workday_on_or_after(month.replace(day=6))
                kop = int(900_000_00 * self.mf)
                self._expense(rng, w, day, "Участие в выставке", "Выставки", 'АО "Экспоцентр"',
                              "7703006633", kop)  # fmt: skip
            self._bank_fee(rng, month)
            month = (month + dt.timedelta(days=32)).replace(day=1)
        day = C.END - dt.timedelta(days=158)  # a refund keyed in as a negative expense
        w.row([ru_date(day), "Реклама", "Яндекс.Директ", "-500,00", yandex.name])
        self.out.faults.note("accounting_1c/expenses.csv",
                             f"row dated {ru_date(day)} with Сумма -500,00 (quarantined)")  # fmt: skip
        w.close()
        self._suppliers(rng)

    def _expense(self, rng: random.Random, w: CsvOut, day: dt.date, item: str, channel: str, who: str,
                 inn: str, kop: int) -> None:  # fmt: skip
        w.row([ru_date(day), item, channel, money_ru(kop, rng.choice(["", " "])), who])
        if item == "Заработная плата":
            payee = Party("Сотрудники по реестру", US.inn, US.kpp, "40702810938000099999")
            purpose = f"Перечисление заработной платы за {day:%m.%Y} по реестру № {day.month}"
        else:
            payee = Party(who, inn, inn[:4] + "01001" if inn else "", f"40702810{inn or '0'}00")
            purpose = f"Оплата по счету № {rng.randint(10, 999)} от {ru_date(day)}, в т.ч. НДС 20%"
        self.bank.document(rng, day, kop, US, payee, purpose)

    def _bank_fee(self, rng: random.Random, month: dt.date) -> None:
        day = _workday_on_or_after(month.replace(day=28))
        if not C.START <= day <= C.END:
            return
        sber = Party("ПАО СБЕРБАНК", "7707083893", "773601001", "70601810038002740401")
        self.bank.document(rng, day, 4_900_00, US, sber,
                           f"Комиссия за ведение счета за {day:%m.%Y}. Без НДС",
                           section="Банковский ордер")  # fmt: skip
        if month.month == 7:  # the tax office collects an arrear
            ufk = Party("УФК по г. Москве (ИФНС России № 14 по г. Москве)", "7714046959",
                        "771401001", "03100643000000017300")  # fmt: skip
            self.bank.document(rng, day, int(37_450_00 * self.mf), US, ufk,
                               f"Взыскание недоимки по решению № 1427 от 10.07.{day.year}",
                               section="Инкассовое поручение")  # fmt: skip

    def _suppliers(self, rng: random.Random) -> None:
        """Goods bought for resale: 55 % of each month's receipts, paid in 3 instalments."""
        dist = Party('ООО "Дистрибьютор Ай-Ти"', "7703232431", "770301001", "40702810500000047210")
        for key in list(self.bank.received):
            total = self.bank.month_received(key) * 55 // 100
            year, month = int(key[:4]), int(key[5:])
            for part, mday in ((40, 7), (30, 16), (30, 26)):
                day = _workday_on_or_after(dt.date(year, month, mday))
                if C.START <= day <= C.END and total:
                    self.bank.document(rng, day, total * part // 100, US, dist,
                                       f"Оплата за товар по счету № {rng.randint(1000, 9999)}, "
                                       "в т.ч. НДС 20%")  # fmt: skip

    # --- finishing ---------------------------------------------------------------------------
    def product_costs(self, products: list[Product]) -> None:
        w = self.out.russian("accounting_1c/product_costs.csv", ["Код", "Себестоимость",
                                                                 "Действует с"])  # fmt: skip
        for p in products:
            periods = [(dt.date(C.START.year, 1, 1), 95), (C.month_start(C.END, 8), 100)]
            if p.idx % 3 != 2:
                periods.append((C.month_start(C.END, 2), 107))
            for since, pct in periods:
                w.row([p.code, money_ru(p.cost * pct // 100), ru_date(since)])
        w.close()

    def close(self, root: Path) -> None:
        self._write_invoices(root)
        self.csv.close()
        path = root / self.xlsx_rel
        raw = path.with_name(path.name + ".tmp")
        self.wb.save(raw)
        _reproducible_zip(raw, path)
        raw.unlink()
        self.out.counts[self.xlsx_rel] = self.xlsx_rows
        self.bank.write(root, self.out.counts, self.numbers)


def _reproducible_zip(src: Path, dst: Path) -> None:
    """Re-pack an XLSX with fixed entry times and document dates (openpyxl stamps `now`)."""
    stamp = C.EXPORT_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=C.EXPORT_AT.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            if item.filename == "docProps/core.xml":
                xml = zin.read(item).decode("utf-8")
                xml = re.sub(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rf"\g<1>{stamp}", xml)
                zout.writestr(info, xml)
                continue
            with zin.open(item) as fin, zout.open(info, "w") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)


def _cell(ws: object, day: dt.date) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=dt.datetime.combine(day, dt.time()))
    cell.number_format = "DD.MM.YYYY"
    return cell


def _purpose(rng: random.Random, no: int, day: dt.date, rub: int, prepay: bool) -> str:
    vat = round(rub * 20 / 120)
    if prepay:
        return rng.choice([f"Предоплата по счёту №{num(no, '04')}",
                           f"Аванс по счету № {num(no)} от {ru_date(day)}, в т.ч. НДС 20%"])  # fmt: skip
    return rng.choice([
        f"Оплата по счету № {num(no)} от {ru_date(day)}, в т.ч. НДС 20%",
        f"Оплата по счету № {num(no)} от {ru_date(day)}, в т.ч. НДС 20% - {vat // 100}-{vat % 100:02d}",
        f"Оплата по сч. {num(no)}",
        f"Оплата по счёту N{num(no)} за оборудование, в том числе НДС (20%)",
        f"оплата сч.№{num(no)} от {day:%d.%m.%y}",
    ])  # fmt: skip
