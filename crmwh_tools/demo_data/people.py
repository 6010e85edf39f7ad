"""The shared world: managers, customers with their contacts, products and campaigns.

Customers are computed from (seed, index) on demand and cached, so that every export
spells the same company, INN, phone and e-mail without holding the base in memory.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from dataclasses import dataclass

from . import config as C
from . import vocab
from .ids import inn10, inn12, inn_typo, mix, mobile, rng_for, sf_id, weighted

TEAMS = [
    # (name, PBX, channel technology, first extension)
    ("Москва", "asterisk", "SIP", 101),
    ("Ключевые клиенты", "asterisk", "PJSIP", 201),
    ("Регионы", "cloud", "SIP", 301),
]
PRE_PERIOD_SHARE = 0.35  # customers acquired before the simulated year
FIRST_CUSTOMER = dt.date(2019, 3, 1)


@dataclass(frozen=True)
class Manager:
    idx: int
    user_id: str
    first: str
    last: str
    email: str
    team: int  # -1: not in a sales team (director, integration user)
    ext: str
    active_from: dt.date
    active_to: dt.date | None
    role_id: str
    head_id: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def name_lat(self) -> str:
        return vocab.translit(self.name)

    def active_on(self, day: dt.date) -> bool:
        return self.active_from <= day and (self.active_to is None or day <= self.active_to)


def build_managers(seed: int) -> list[Manager]:
    """Director, 3 teams of 4 (team heads first), one leaver and his successor, a bot."""
    rng = rng_for(seed, "managers")
    last = rng.sample(vocab.LAST, 16)
    out: list[Manager] = []

    def add(
        first: str,
        surname: str,
        team: int,
        ext: str,
        frm: dt.date,
        to: dt.date | None = None,
        head: str = "",
    ) -> None:
        idx = len(out)
        email = f"{vocab.translit(first)[0]}.{vocab.translit(surname)}@technosnab.ru".lower()
        role = sf_id("00E", team + 1) if team >= 0 else sf_id("00E", 0)
        out.append(Manager(idx, sf_id("005", idx + 1), first, surname, email, team, ext, frm, to,
                           role, head))  # fmt: skip

    def person(k: int) -> tuple[str, str]:
        if rng.random() < 0.35:
            surname = last[k] + "а" if not last[k].endswith("ий") else last[k][:-2] + "ая"
            return rng.choice(vocab.FEMALE_FIRST), surname
        return rng.choice(vocab.MALE_FIRST), last[k]

    # a manager of team 0 left the day before Bitrix24 came; a new one started the next day
    left = C.BITRIX_SINCE - dt.timedelta(days=1)
    add(*person(0), team=-1, ext="100", frm=dt.date(2018, 1, 9))  # sales director
    director = out[0].user_id
    k = 1
    for team, (_, _, _, ext0) in enumerate(TEAMS):
        heads = ""
        for j in range(4):
            if team == 0 and j == 3:
                add(*person(k), team, str(ext0 + j), dt.date(2021, 6, 1), left, heads)
                k += 1
                add(*person(k), team, str(ext0 + 4), left + dt.timedelta(days=1),
                    head=heads)  # fmt: skip
            else:
                since = dt.date(2019 + (k % 5), 1 + k % 12, 1)
                add(*person(k), team, str(ext0 + j), since, head=heads or director)
                heads = heads or out[-1].user_id
            k += 1
    out.append(Manager(len(out), sf_id("005", 99), "Integration", "User",
                       "integration@technosnab.ru", -1, "", dt.date(2018, 1, 9), None,
                       sf_id("00E", 0), ""))  # fmt: skip
    return out


def sales_managers(managers: list[Manager], day: dt.date, team: int | None = None) -> list[Manager]:
    return [m for m in managers if m.team >= 0 and m.active_on(day) and team in (None, m.team)]


@dataclass(frozen=True)
class Contact:
    idx: int
    first: str
    last: str
    title: str
    mobile: str  # ten national digits
    email: str  # as the person writes it (mixed case)

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass(frozen=True)
class Customer:
    idx: int
    core: str  # Ромашка-Трейд
    form: str  # ООО / ИП / ...
    name_ru: str  # ООО "Ромашка-Трейд"
    name_lat: str  # Romashka-Treyd OOO (ISO-8859-1 safe)
    inn: str  # as the customer really has it (valid for most)
    kpp: str
    city: str
    city_en: str
    phone: str  # ten national digits, landline
    domain: str
    industry: str
    segment: str
    created: dt.date
    owner: int  # index of the account manager
    in_salesforce: bool
    contacts: tuple[Contact, ...]


class World:
    """Customers, managers, products and campaigns of one seed and scale."""

    def __init__(self, seed: int, n_customers: int):
        self.seed = seed
        self.n = n_customers
        self.managers = build_managers(seed)
        self.owners = [m.idx for m in self.managers if m.team >= 0 and m.active_to is None]
        self.n_pre = int(n_customers * PRE_PERIOD_SHARE)
        self.customer = functools.lru_cache(maxsize=65_536)(self._customer)

    # customers are created in index order: the first n_pre before START, the rest in the year
    def created(self, i: int) -> dt.date:
        if i < self.n_pre:
            span = (C.START - FIRST_CUSTOMER).days
            return FIRST_CUSTOMER + dt.timedelta(days=span * i // max(self.n_pre, 1))
        span = (C.END - C.START).days
        return C.START + dt.timedelta(days=span * (i - self.n_pre) // max(self.n - self.n_pre, 1))

    def known_by(self, day: dt.date) -> int:
        """How many customers exist on `day` (customers 0..k-1)."""
        if day < C.START:
            first_days = (C.START - FIRST_CUSTOMER).days
            return max(1, self.n_pre * (day - FIRST_CUSTOMER).days // first_days)
        frac = (day - C.START).days / (C.END - C.START).days
        return min(self.n, max(1, self.n_pre + int((self.n - self.n_pre) * frac) + 1))

    def _customer(self, i: int) -> Customer:
        rng = rng_for(self.seed, "customer", i)
        city, city_en, region, area, _ = weighted(rng, vocab.CITIES)
        office = f"{(i // 100_000) % 10}{rng.randrange(10)}"
        serial = (i * 7919 + mix(self.seed) % 100_000) % 100_000
        kind = rng.random()
        if kind < 0.012:
            lat, ru = vocab.FOREIGN[i % len(vocab.FOREIGN)]
            n = i // 1000
            core, form = ru + (f" {n}" if n else ""), "ООО"
            name_lat = lat + (f" {n}" if n else "")
            inn, name_ru = inn10(f"99{office}{serial:05d}"), f'ООО "{core}"'
        elif kind < 0.13:
            first, surname = rng.choice(vocab.MALE_FIRST), rng.choice(vocab.LAST)
            pat = rng.choice(vocab.PATRONYMIC_M)
            core, form = f"{surname} {first} {pat}", "ИП"
            name_ru = f"ИП {core}"
            name_lat = (
                f"IP {vocab.translit(surname)} {vocab.translit(first)[0]}.{vocab.translit(pat)[0]}."
            )
            inn = inn12(f"{region}{office}{serial:05d}{rng.randrange(10)}")
        else:
            combos = len(vocab.COMPANY_ROOTS) * len(vocab.COMPANY_SUFFIXES)
            c = (i * 7919) % combos
            root = vocab.COMPANY_ROOTS[c % len(vocab.COMPANY_ROOTS)]
            suffix = vocab.COMPANY_SUFFIXES[c // len(vocab.COMPANY_ROOTS)]
            core = f"{root}-{suffix}" if suffix else root
            if i >= combos:
                core += f" {i // combos + 1}"
            form = weighted(rng, vocab.LEGAL_FORMS)[0]
            name_ru = f'{form} "{core}"'
            name_lat = f"{vocab.translit(core)} {vocab.translit(form)}"
            inn = inn10(f"{region}{office}{serial:05d}")
        if rng.random() < 0.02:  # the customer's own records carry a broken INN
            inn = inn_typo(inn, rng)
        kpp = "" if form == "ИП" else f"{inn[:4]}01001"
        slug = "".join(ch for ch in vocab.translit(core).lower() if ch.isalnum() or ch == "-")
        domain = f"{slug or 'firm'}.{rng.choice(vocab.EMAIL_ZONES)}"
        if form == "ИП":
            domain = rng.choice(vocab.FREE_MAIL)
        created = self.created(i)
        in_sf = not (created >= C.BITRIX_SINCE and rng.random() < 0.4)
        contacts = tuple(self._contact(rng, i * 4 + j, domain) for j in range(1 + rng.randrange(3)))
        return Customer(
            i, core, form, name_ru, name_lat, inn, kpp, city, city_en,
            f"{area}{(i * 7_654_321 + self.seed) % 10**7:07d}", domain,
            rng.choice(vocab.INDUSTRIES), weighted(rng, vocab.SEGMENTS)[0], created,
            self.owners[rng.randrange(len(self.owners))], in_sf, contacts,
        )  # fmt: skip

    def _contact(self, rng: random.Random, idx: int, domain: str) -> Contact:
        female = rng.random() < 0.45
        first = rng.choice(vocab.FEMALE_FIRST if female else vocab.MALE_FIRST)
        last = rng.choice(vocab.LAST)
        if female:
            last = last + "а"
        f_lat, l_lat = vocab.translit(first), vocab.translit(last)
        local = rng.choice([f"{f_lat}.{l_lat}", f"{f_lat[0]}.{l_lat}", f"{l_lat}", f"{f_lat}"])
        if domain in vocab.FREE_MAIL:
            local = f"{l_lat.lower()}{rng.randrange(70, 99)}"
        title = rng.choice(vocab.JOB_TITLES)
        return Contact(idx, first, last, title, mobile(idx, self.seed), f"{local}@{domain}")

    def pick_customer(self, rng: random.Random, day: dt.date) -> Customer:
        """An existing customer on `day`, older (bigger) customers more often."""
        k = self.known_by(day)
        return self.customer(int(k * rng.random() ** 2))


@dataclass(frozen=True)
class Product:
    idx: int
    id: str
    code: str
    name: str
    family: str
    price: int  # kopecks
    cost: int  # kopecks, at the start of the period
    active: bool


def build_products() -> list[Product]:
    return [
        Product(
            i,
            sf_id("01t", i + 1),
            code,
            name,
            fam,
            price * 100,
            cost * 100,
            code not in vocab.INACTIVE_PRODUCTS,
        )  # fmt: skip
        for i, (code, name, fam, price, cost) in enumerate(vocab.PRODUCTS)
    ]


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    type: str
    lead_source: str
    start: dt.date
    end: dt.date
    budget: int  # kopecks


def build_campaigns(money_factor: float) -> list[Campaign]:
    channels = [
        ("Яндекс.Директ", "Advertisement", "Yandex.Direct", 450_000),
        ("Контекстная реклама", "Banner Ads", "Advertisement", 250_000),
        ("Партнёрская программа", "Partners", "Partner Referral", 150_000),
        ("Email-рассылка", "Email", "Web", 40_000),
    ]
    out: list[Campaign] = []
    quarter = C.quarter_start(C.START)  # every quarter the simulated year touches
    while quarter <= C.END:
        year, q = quarter.year, (quarter.month + 2) // 3
        start = quarter
        quarter = C.month_start(quarter + dt.timedelta(days=95))
        end = quarter - dt.timedelta(days=1)
        for name, typ, source, budget in channels:
            out.append(Campaign(sf_id("701", len(out) + 1), f"{name} {q}кв. {year}", typ, source,
                                start, end, int(budget * 100 * money_factor)))  # fmt: skip
    events = (
        ("Выставка «Связь-{}»", 220),
        ("Выставка «ПТА Москва»", 45),
        ("Вебинар «Резервное копирование»", 275),
    )  # (name, days before END)
    for pattern, days_before in events:
        start = C.END - dt.timedelta(days=days_before)
        name = pattern.format(start.year)
        typ = "Webinar" if name.startswith("Вебинар") else "Trade Show"
        out.append(Campaign(sf_id("701", len(out) + 1), name, typ, "Other", start,
                            start + dt.timedelta(days=3), int(600_000_00 * money_factor)))  # fmt: skip
    return out
