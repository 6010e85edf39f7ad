"""1CClientBankExchange bank statements (docs/sources.md), one file per month.

Payments are spooled by day while deals are generated; each month's file is then
written in date order with an account section whose balances reconcile with its
documents (opening + received - debited = closing, closing = next opening).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Sequence
from pathlib import Path

from . import config as C
from .ids import inn10, money_dot, ru_date
from .writers import DaySpool

OUR_INN = inn10(C.OUR_INN_BODY)
SEP = "\x1f"  # separates the key=value lines of one spooled document
TOKEN = re.compile("\x02(\\d+)(?::(\\w+))?\x03")  # an invoice number not yet given


def num(g: int, fmt: str = "") -> str:
    """Placeholder for the number of spooled invoice `g` (numbers follow invoice dates)."""
    return f"\x02{g}:{fmt}\x03" if fmt else f"\x02{g}\x03"


class Party:
    """Who pays or receives: name, INN, KPP, account and bank."""

    __slots__ = ("name", "inn", "kpp", "account", "bank", "bik", "corr")

    def __init__(self, name: str, inn: str, kpp: str, account: str,
                 bank: str = C.OUR_BANK, bik: str = C.OUR_BIK, corr: str = C.OUR_CORR) -> None:  # fmt: skip
        self.name, self.inn, self.kpp, self.account = name, inn, kpp, account
        self.bank, self.bik, self.corr = bank, bik, corr


US = Party(C.OUR_NAME, OUR_INN, C.OUR_KPP, C.OUR_ACCOUNT)
BANKS = [
    ('АО "АЛЬФА-БАНК"', "044525593", "30101810200000000593"),
    ("Банк ВТБ (ПАО)", "044525187", "30101810700000000187"),
    ('АО "ТБанк"', "044525974", "30101810145250000974"),
    ("ПАО СБЕРБАНК", "044525225", "30101810400000000225"),
    ('ПАО "Промсвязьбанк"', "044525555", "30101810400000000555"),
]


def _name_lines(key: str, party: Party, rng: random.Random) -> list[str]:
    """`Плательщик=name`, `Плательщик=INN, name` + `Плательщик1=name`, or split 1..2."""
    r = rng.random()
    if r < 0.55:
        return [f"{key}={party.name}"]
    if r < 0.85:
        return [f"{key}={party.inn}, {party.name}", f"{key}1={party.name}"]
    half = party.name.find(" ", len(party.name) // 2)
    if half < 0:
        return [f"{key}=", f"{key}1={party.name}"]
    return [f"{key}=", f"{key}1={party.name[:half]}", f"{key}2={party.name[half + 1 :]}"]


def _purpose_lines(purpose: str, rng: random.Random) -> list[str]:
    if len(purpose) > 50 and rng.random() < 0.35:
        cut = purpose.find(" ", 40)
        if cut > 0:
            return [
                f"НазначениеПлатежа={purpose[:cut]}",
                f"НазначениеПлатежа1={purpose[cut + 1 :]}",
            ]
    return [f"НазначениеПлатежа={purpose}"]


class Statements:
    def __init__(self, workdir: Path, opening: int) -> None:
        self.spool = DaySpool(workdir)
        self.opening = opening
        self.received: dict[str, int] = {}
        self.debited: dict[str, int] = {}
        self.out_no = 1000

    def document(self, rng: random.Random, day: dt.date, amount: int, payer: Party,
                 payee: Party, purpose: str, number: str = "",
                 section: str = "Платежное поручение") -> None:  # fmt: skip
        """One payment; incoming when we are the payee, outgoing when we pay."""
        incoming = payee is US
        if not number:
            self.out_no += 1
            number = str(self.out_no)
        key = f"{day:%Y-%m}"
        book = self.received if incoming else self.debited
        book[key] = book.get(key, 0) + amount
        lines = [f"СекцияДокумент={section}", f"Номер={number}", f"Дата={ru_date(day)}",
                 f"Сумма={money_dot(amount)}", f"ПлательщикСчет={payer.account}",
                 f"ДатаСписано={'' if incoming else ru_date(day)}"]  # fmt: skip
        lines += _name_lines("Плательщик", payer, rng)
        lines += [f"ПлательщикИНН={payer.inn}", f"ПлательщикКПП={payer.kpp}",
                  f"ПлательщикРасчСчет={payer.account}", f"ПлательщикБанк1={payer.bank}",
                  f"ПлательщикБИК={payer.bik}", f"ПлательщикКорсчет={payer.corr}",
                  f"ПолучательСчет={payee.account}",
                  f"ДатаПоступило={ru_date(day) if incoming else ''}"]  # fmt: skip
        lines += _name_lines("Получатель", payee, rng)
        lines += [f"ПолучательИНН={payee.inn}", f"ПолучательКПП={payee.kpp}",
                  f"ПолучательРасчСчет={payee.account}", f"ПолучательБанк1={payee.bank}",
                  f"ПолучательБИК={payee.bik}", f"ПолучательКорсчет={payee.corr}",
                  "ВидПлатежа=", "ВидОплаты=01", "Код=0", "СтатусСоставителя=",
                  "ПоказательКБК=", "ОКАТО=", "Очередность=5"]  # fmt: skip
        lines += _purpose_lines(purpose, rng)
        lines.append("КонецДокумента")
        self.spool.add(day, SEP.join(lines))

    def month_received(self, key: str) -> int:
        return self.received.get(key, 0)

    def write(self, folder: Path, counts: dict[str, int], numbers: Sequence[int]) -> None:
        """Render every month's statement in date order, balances carried over."""
        balance = self.opening
        for key in self.spool.months():
            year, month = int(key[:4]), int(key[5:])
            first = max(C.START, dt.date(year, month, 1))
            nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
            last = min(C.END, nxt - dt.timedelta(days=1))
            got, paid = self.received.get(key, 0), self.debited.get(key, 0)
            closing = balance + got - paid
            rel = f"accounting_1c/statement_{key}.txt"
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            n = 0
            with path.open("w", encoding="cp1251", newline="\r\n", errors="strict") as fh:
                fh.write("1CClientBankExchange\n")
                fh.write("ВерсияФормата=1.03\nКодировка=Windows\n")
                fh.write("Отправитель=СберБизнес\nПолучатель=Бухгалтерия предприятия, ред. 3.0\n")
                created = last + dt.timedelta(days=1)
                fh.write(f"ДатаСоздания={ru_date(created)}\nВремяСоздания=09:{month:02d}:17\n")
                fh.write(f"ДатаНачала={ru_date(first)}\nДатаКонца={ru_date(last)}\n")
                fh.write(f"РасчСчет={C.OUR_ACCOUNT}\n")
                fh.write("Документ=Платежное поручение\nДокумент=Банковский ордер\n")
                fh.write("Документ=Платежное требование\nДокумент=Инкассовое поручение\n")
                fh.write(
                    f"СекцияРасчСчет\nДатаНачала={ru_date(first)}\nДатаКонца={ru_date(last)}\n"
                )
                fh.write(f"РасчСчет={C.OUR_ACCOUNT}\nНачальныйОстаток={money_dot(balance)}\n")
                fh.write(f"ВсегоПоступило={money_dot(got)}\nВсегоСписано={money_dot(paid)}\n")
                fh.write(f"КонечныйОстаток={money_dot(closing)}\nКонецРасчСчет\n")
                for _, text in self.spool.read_month(key):
                    if "\x02" in text:
                        text = TOKEN.sub(lambda m: format(numbers[int(m[1])], m[2] or ""), text)
                    fh.write(text.replace(SEP, "\n") + "\n")
                    n += 1
                fh.write("КонецФайла\n")
            counts[rel] = n
            balance = closing
