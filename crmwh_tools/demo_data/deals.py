"""Deals and their stage timelines, generated one at a time in order of creation.

A deal walks through its pipeline's open stages (mostly forward, sometimes skipping one,
sometimes back), with amount and close-date changes in between, and ends won, lost,
stalled or still open on the export day.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from . import config as C
from .faults import FaultPlan
from .ids import at_time, rng_for, sf_id, weighted
from .people import Campaign, Contact, Customer, Manager, Product, World, sales_managers


@dataclass(slots=True)
class Event:
    ts: dt.datetime  # Moscow local
    level: int  # index of the open stage; len(stages) = won, len(stages) + 1 = lost
    stage: str
    amount: int  # kopecks in the deal currency
    close: dt.date  # expected (open) or actual (closed) close date


@dataclass(slots=True)
class Deal:
    k: int
    crm: str  # "sf" or "bx"
    id: str
    customer: Customer
    contact: Contact
    owner: Manager
    created: dt.datetime
    source: int  # index into config.LEAD_SOURCES
    campaign: Campaign | None
    currency: str
    status: str  # open / won / lost
    events: list[Event]
    lines: list[tuple[Product, int, int]] = field(default_factory=list)  # product, qty, unit
    loss_reason: str = ""
    deleted: bool = False
    new_business: bool = False

    @property
    def amount(self) -> int:
        return self.events[-1].amount

    @property
    def stage(self) -> str:
        return self.events[-1].stage

    @property
    def closed_on(self) -> dt.date | None:
        return self.events[-1].close if self.status != "open" else None

    def stage_reached(self, level: int) -> dt.datetime | None:
        """When the deal first entered an open stage at or beyond `level` (or closed won)."""
        for ev in self.events:
            if ev.level >= level and not (self.status == "lost" and ev is self.events[-1]):
                return ev.ts
        return None


def _next_moment(rng: random.Random, prev: dt.datetime, days: float) -> dt.datetime:
    day = (prev + dt.timedelta(days=days)).date()
    if not C.is_workday(day):
        day = C.next_workday(day)
    ts = at_time(day, rng)
    if ts <= prev:
        ts = prev + dt.timedelta(minutes=rng.randint(5, 240))
    return ts


def walk(rng: random.Random, created: dt.datetime, stages: list[str], won: str, lost: str,
         amount: int, slow: float) -> tuple[str, list[Event]]:  # fmt: skip
    """The stage timeline of one deal up to the export moment."""
    n = len(stages)
    r = rng.random()
    if r < 0.32:
        target, outcome = n - 1, "won"
    elif r < 0.80:
        target = min(int(rng.expovariate(0.45)), n - 1)
        outcome = "lost"
    else:
        target, outcome = rng.randrange(n), "stalled"
    close = created.date() + dt.timedelta(days=int(rng.uniform(20, 90) * slow))
    ts, level = created, 0
    events = [Event(ts, 0, stages[0], amount, close)]
    mean = math.log(4.0 * slow)
    while True:
        if outcome == "stalled" and level >= target:
            return "open", events
        ts = _next_moment(rng, ts, rng.lognormvariate(mean, 0.9))
        if ts > C.EXPORT_AT:
            return "open", events
        if level >= target and (outcome == "won" or rng.random() < 0.6):
            if outcome == "won":
                events.append(Event(ts, n, won, amount, ts.date()))
                return "won", events
            events.append(Event(ts, n + 1, lost, amount, ts.date()))
            return "lost", events
        x = rng.random()
        if x < 0.07 and level > 0:
            level -= 1  # back a stage (revisit)
        elif x < 0.17:
            amount = max(10_000, round(amount * rng.uniform(0.82, 1.08) / 10_000) * 10_000)
        elif x < 0.22:
            close = max(close, ts.date()) + dt.timedelta(days=rng.randint(7, 30))
        else:
            level = min(level + (2 if rng.random() < 0.15 else 1), max(target, level + 1), n - 1)
        events.append(Event(ts, level, stages[level], amount, close))


def _lines(rng: random.Random, products: list[Product], final: int, rate: float):
    """Line items (product, qty, unit price) summing exactly to `final` (deal currency)."""
    chosen = rng.sample([p for p in products if p.active], rng.choice([1, 1, 2, 2, 3, 4]))
    qtys = [rng.choice([1, 1, 2, 3, 5, 10]) for _ in chosen[:-1]] + [1]
    listed = sum(p.price * q for p, q in zip(chosen, qtys, strict=True)) * rate
    f = final / listed
    out, total = [], 0
    for p, q in zip(chosen[:-1], qtys[:-1], strict=True):
        unit = max(1, round(p.price * rate * f))
        out.append((p, q, unit))
        total += unit * q
    out.append((chosen[-1], 1, final - total))
    if out[-1][2] <= 0:  # rounding pathologies: one line carries the whole amount
        out = [(chosen[-1], 1, final)]
    return out


def iter_deals(world: World, products: list[Product], campaigns: list[Campaign],
               n_deals: int, bitrix_share: float, faults: FaultPlan) -> Iterator[Deal]:  # fmt: skip
    """All deals of the year in order of creation (each generated independently)."""
    days = C.workdays(C.START, C.END - dt.timedelta(days=1))
    sf_stages = [s for s, _, _ in C.SF_STAGES]
    next_new = world.n_pre
    bx_no = 0
    for k in range(n_deals):
        rng = rng_for(world.seed, "deal", k)
        day = days[min(len(days) - 1, int((k + rng.random()) * len(days) / n_deals))]
        created = at_time(day, rng)
        if next_new < world.known_by(day) and rng.random() < 0.4:
            customer, new_business = world.customer(next_new), True
            next_new += 1
        else:
            customer, new_business = world.pick_customer(rng, day), False
        bitrix = day >= C.BITRIX_SINCE and (
            not customer.in_salesforce or rng.random() < bitrix_share
        )
        team = 2 if bitrix else None
        owner = world.managers[customer.owner]
        if bitrix or not owner.active_on(day) or rng.random() < 0.2:
            pool = sales_managers(world.managers, day, team)
            owner = pool[rng.randrange(len(pool))]
        source = C.LEAD_SOURCES.index(weighted(rng, C.LEAD_SOURCES))
        campaign = None
        if rng.random() < 0.6:
            fits = [c for c in campaigns if c.lead_source == C.LEAD_SOURCES[source][0]
                    and c.start <= day <= c.end]  # fmt: skip
            campaign = fits[rng.randrange(len(fits))] if fits else None
        currency = "RUB"
        if not bitrix and rng.random() < 0.06:
            currency = "USD" if rng.random() < 0.6 else "EUR"
        rate = C.RATE[currency]
        slow = {"SMB": 0.8, "Mid-Market": 1.2, "Enterprise": 2.0}[customer.segment]
        base = sum(p.price for p in rng.sample(products[:22], 2)) * rng.uniform(0.5, 3.0)
        amount0 = max(10_000, round(base * slow * rate / 10_000) * 10_000)
        if bitrix:
            status, events = walk(rng, created, C.BX_STAGES, C.BX_WON, C.BX_LOST, amount0, slow)
            bx_no += 1
            deal_id = str(10_000 + bx_no * 3 + rng.randrange(3))
        else:
            status, events = walk(rng, created, sf_stages, C.SF_WON[0], C.SF_LOST[0], amount0, slow)
            deal_id = sf_id("006", k + 1)
        contact = customer.contacts[rng.randrange(len(customer.contacts))]
        deal = Deal(k, "bx" if bitrix else "sf", deal_id, customer, contact, owner, created,
                    source, campaign, currency, status, events, new_business=new_business)  # fmt: skip
        if status == "lost":
            reasons = C.LOSS_REASONS_BX if bitrix else C.LOSS_REASONS_SF
            deal.loss_reason = reasons[rng.randrange(len(reasons))]
        if not bitrix:
            deal.lines = _lines(rng, products, deal.amount, rate)
        faults.mark_deal(deal)
        yield deal
