"""Salesforce weekly Data Export (docs/sources.md): one CSV per object, every value quoted."""

from __future__ import annotations

import datetime as dt
import random

from . import config as C
from .deals import Deal
from .ids import at_time, money_dot, phone_fmt, rng_for, sf15, sf_id, sf_ts
from .people import Campaign, Customer, Product, World
from .writers import Output

USER = ["Id", "Name", "FirstName", "LastName", "Email", "Username", "IsActive", "UserRoleId",
        "ManagerId", "Department", "Extension", "CreatedDate", "SystemModstamp"]  # fmt: skip
ACCOUNT = ["Id", "IsDeleted", "Name", "Type", "Industry", "Phone", "Website", "BillingCity",
           "BillingCountry", "OwnerId", "CreatedDate", "SystemModstamp", "INN__c", "KPP__c",
           "Description"]  # fmt: skip
CONTACT = ["Id", "IsDeleted", "AccountId", "FirstName", "LastName", "Title", "Email", "Phone",
           "MobilePhone", "LeadSource", "OwnerId", "CreatedDate", "SystemModstamp", "Description"]  # fmt: skip
OPPORTUNITY = ["Id", "IsDeleted", "AccountId", "Name", "Description", "StageName", "Amount",
               "Probability", "CloseDate", "Type", "NextStep", "LeadSource", "CampaignId",
               "IsClosed", "IsWon", "ForecastCategory", "CurrencyIsoCode", "OwnerId",
               "CreatedDate", "LastModifiedDate", "SystemModstamp", "Loss_Reason__c"]  # fmt: skip
HISTORY = ["Id", "OpportunityId", "StageName", "Amount", "ExpectedRevenue", "Probability",
           "CloseDate", "ForecastCategory", "CreatedById", "CreatedDate", "SystemModstamp",
           "IsDeleted"]  # fmt: skip
LINE_ITEM = ["Id", "OpportunityId", "Product2Id", "Quantity", "UnitPrice", "ListPrice",
             "TotalPrice", "CurrencyIsoCode", "CreatedDate", "SystemModstamp", "IsDeleted"]  # fmt: skip
PRODUCT = ["Id", "Name", "ProductCode", "Family", "IsActive", "Description",
           "QuantityUnitOfMeasure", "CreatedDate", "SystemModstamp"]  # fmt: skip
CAMPAIGN = ["Id", "Name", "Type", "Status", "StartDate", "EndDate", "BudgetedCost",
            "ActualCost", "IsActive", "Description", "CreatedDate", "SystemModstamp"]  # fmt: skip
CURRENCY = ["Id", "IsoCode", "ConversionRate", "DecimalPlaces", "IsActive", "IsCorporate",
            "CreatedDate"]  # fmt: skip
STAGE = ["Id", "MasterLabel", "ApiName", "SortOrder", "DefaultProbability",
         "ForecastCategoryName", "IsClosed", "IsWon", "IsActive", "Description"]  # fmt: skip
LEAD = ["Id", "IsDeleted", "FirstName", "LastName", "Company", "Title", "Email", "Phone",
        "Status", "LeadSource", "OwnerId", "CreatedDate", "IsConverted", "ConvertedDate",
        "ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId", "City",
        "SystemModstamp", "Description"]  # fmt: skip
TASK = ["Id", "WhoId", "WhatId", "OwnerId", "Subject", "Status", "Priority", "ActivityDate",
        "CreatedDate", "IsClosed", "TaskSubtype", "CallDurationInSeconds", "CallType",
        "CallDisposition", "Description", "SystemModstamp", "IsDeleted"]  # fmt: skip

STAGE_INFO = {s: (p, f) for s, p, f in [*C.SF_STAGES, C.SF_WON, C.SF_LOST, C.SF_ROGUE_STAGE]}
INBOUND_SOURCES = {"Web", "Phone Inquiry", "Advertisement", "Yandex.Direct", "Partner Referral"}
EPOCH = dt.datetime(2018, 1, 9, 10, 0)


def b(value: bool) -> str:
    return "true" if value else "false"


def account_id(c: Customer) -> str:
    return sf_id("001", c.idx + 1)


def contact_id(idx: int) -> str:
    return sf_id("003", idx + 1)


def maybe15(rng: random.Random, id18: str, share: float = 0.1) -> str:
    """Some references hold the 15-character form of the Id."""
    return sf15(id18) if id18 and rng.random() < share else id18


class SalesforceExport:
    def __init__(self, out: Output, world: World) -> None:
        self.out, self.world, self.seed = out, world, world.seed
        self.opp = out.salesforce("Opportunity.csv", OPPORTUNITY)
        self.hist = out.salesforce("OpportunityHistory.csv", HISTORY)
        self.lines = out.salesforce("OpportunityLineItem.csv", LINE_ITEM)
        self.task = out.salesforce("Task.csv", TASK)
        self.lead = out.salesforce("Lead.csv", LEAD)

    def close(self) -> None:
        for w in (self.opp, self.hist, self.lines, self.task, self.lead):
            w.close()

    # --- reference objects ------------------------------------------------------------
    def write_static(self, products: list[Product], campaigns: list[Campaign]) -> None:
        from .people import TEAMS

        w = self.out.salesforce("User.csv", USER)
        for m in self.world.managers:
            dept = TEAMS[m.team][0] if m.team >= 0 else ("Продажи" if m.ext else "ИТ")
            since = at_time(m.active_from, rng_for(self.seed, "user", m.idx))
            w.row([m.user_id, m.name, m.first, m.last, m.email, m.email + ".prod",
                   b(m.active_to is None), m.role_id, m.head_id, dept, m.ext, sf_ts(since),
                   sf_ts(dt.datetime.combine(m.active_to, dt.time(18)) if m.active_to else since)])  # fmt: skip
        w.close()
        w = self.out.salesforce("Product2.csv", PRODUCT)
        for p in products:
            unit = "час" if p.family == "Услуги" and "день" not in p.name else "шт."
            w.row([p.id, p.name, p.code, p.family, b(p.active), "", unit, sf_ts(EPOCH),
                   sf_ts(EPOCH + dt.timedelta(days=900 + p.idx))])  # fmt: skip
        w.close()
        w = self.out.salesforce("Campaign.csv", CAMPAIGN)
        for c in campaigns:
            status = "Completed" if c.end < C.END else "In Progress"
            actual = c.budget * (90 + len(c.name) % 25) // 100
            w.row([c.id, c.name, c.type, status, c.start.isoformat(), c.end.isoformat(),
                   money_dot(c.budget), money_dot(actual),
                   b(status != "Completed"), "", sf_ts(at_time(c.start, random.Random(7))),
                   sf_ts(EPOCH + dt.timedelta(days=2800))])  # fmt: skip
        w.close()
        w = self.out.salesforce("CurrencyType.csv", CURRENCY)
        for i, (code, rate, corporate) in enumerate(C.CURRENCIES):
            w.row([sf_id("02X", i + 1), code, f"{rate:.6f}", "2", "true", b(corporate),
                   sf_ts(EPOCH)])  # fmt: skip
        w.close()
        w = self.out.salesforce("OpportunityStage.csv", STAGE)
        for i, (label, prob, forecast) in enumerate([*C.SF_STAGES, C.SF_WON, C.SF_LOST]):
            closed = label.startswith("Closed")
            w.row([sf_id("01J", i + 1), label, label, str(i + 1), str(prob), forecast,
                   b(closed), b(label == "Closed Won"), "true", ""])  # fmt: skip
        w.close()

    # --- accounts and contacts ----------------------------------------------------------
    def write_customers(self) -> None:
        acc = self.out.salesforce("Account.csv", ACCOUNT, encoding="latin-1")
        con = self.out.salesforce("Contact.csv", CONTACT)
        deleted_accounts = deleted_contacts = 0
        last_contact = dt.datetime.combine(C.END, dt.time(12, 0))
        for i in range(self.world.n):
            c = self.world.customer(i)
            if not c.in_salesforce:
                continue
            rng = rng_for(self.seed, "sf-account", i)
            owner = self.world.managers[c.owner].user_id
            created = at_time(c.created, rng)
            website = "" if c.form == "ИП" or rng.random() < 0.2 else f"www.{c.domain}"
            inn = c.inn if rng.random() > 0.03 else ""
            kind = "Customer" if i < self.world.n_pre or rng.random() < 0.6 else "Prospect"
            row = [account_id(c), "false", c.name_lat, kind, c.industry,
                   phone_fmt(c.phone, "sf"), website, c.city_en, "Russia",
                   maybe15(rng, owner), sf_ts(created), sf_ts(created + dt.timedelta(days=3)),
                   inn, c.kpp, ""]  # fmt: skip
            acc.row(row)
            if i % 211 == 17 and deleted_accounts < 3:  # a duplicate account, since deleted
                deleted_accounts += 1
                dup_id = sf_id("001", 5_000_000 + i)
                acc.row([dup_id, "true", c.name_lat.upper(), "Prospect", "", "", "",
                         c.city_en, "Russia", owner, sf_ts(created + dt.timedelta(days=40)),
                         sf_ts(created + dt.timedelta(days=41)), c.inn, "", "duplicate"])  # fmt: skip
                self.out.faults.note("crm_salesforce/Account.csv",
                                     f"Id {dup_id} IsDeleted=true, duplicate of {account_id(c)}")  # fmt: skip
            for j, p in enumerate(c.contacts):
                deleted = p.idx % 389 == 5 and deleted_contacts < 2
                deleted_contacts += deleted
                # a later contact of the same account, never after the export day
                since = min(created + dt.timedelta(days=j * 17, minutes=j * 7), last_contact)
                con.row([contact_id(p.idx), b(deleted), maybe15(rng, account_id(c), 0.05),
                         p.first, p.last, p.title, p.email, phone_fmt(c.phone, "sf"),
                         phone_fmt(p.mobile, "sf" if rng.random() < 0.7 else "8"),
                         C.LEAD_SOURCES[rng.randrange(6)][0], owner, sf_ts(since),
                         sf_ts(since + dt.timedelta(hours=5)), ""])  # fmt: skip
                if deleted:
                    self.out.faults.note("crm_salesforce/Contact.csv",
                                         f"Id {contact_id(p.idx)} IsDeleted=true")  # fmt: skip
        acc.close()
        con.close()

    # --- one deal: opportunity, its history, line items, activities, converted lead --------
    def deal(self, d: Deal) -> None:
        rng = rng_for(self.seed, "sf-deal", d.k)
        owner = d.owner.user_id
        last = d.events[-1]
        prob, forecast = STAGE_INFO[last.stage]
        closed = d.status != "open"
        modified = last.ts + dt.timedelta(minutes=rng.randint(1, 600))
        modified = min(modified, C.EXPORT_AT)
        product = d.lines[0][0].name if d.lines else ""
        self.opp.row([d.id, b(d.deleted), maybe15(rng, account_id(d.customer)),
                      f"{d.customer.core} — {product}", "", last.stage, money_dot(d.amount),
                      str(prob), last.close.isoformat(),
                      "New Business" if d.new_business else "Existing Business",
                      "" if closed else rng.choice(["Отправить КП", "Встреча", "Звонок", ""]),
                      C.LEAD_SOURCES[d.source][0], d.campaign.id if d.campaign else "",
                      b(closed), b(d.status == "won"), forecast, d.currency,
                      maybe15(rng, owner, 0.05), sf_ts(d.created), sf_ts(modified),
                      sf_ts(modified), d.loss_reason])  # fmt: skip
        for ev in d.events:
            p, f = STAGE_INFO[ev.stage]
            by = owner if rng.random() > 0.05 else self.world.managers[-1].user_id
            self.hist.row([sf_id("008", self.hist.rows + 1), maybe15(rng, d.id, 0.03), ev.stage,
                           money_dot(ev.amount), money_dot(ev.amount * p // 100), str(p),
                           ev.close.isoformat(), f, by, sf_ts(ev.ts), sf_ts(ev.ts),
                           b(d.deleted)])  # fmt: skip
        for product, qty, unit in d.lines:
            list_price = round(product.price * C.RATE[d.currency])
            self.lines.row([sf_id("00k", self.lines.rows + 1), d.id, product.id, str(qty),
                            money_dot(unit), money_dot(list_price), money_dot(unit * qty),
                            d.currency, sf_ts(d.created), sf_ts(d.created), b(d.deleted)])  # fmt: skip
        self._deal_tasks(rng, d)
        if C.LEAD_SOURCES[d.source][0] in INBOUND_SOURCES and rng.random() < 0.7:
            self._converted_lead(rng, d)

    def _deal_tasks(self, rng: random.Random, d: Deal) -> None:
        end = d.events[-1].ts if d.status != "open" else C.EXPORT_AT
        span = max((end - d.created).total_seconds(), 3600.0)
        who = contact_id(d.contact.idx)
        for _ in range(min(8, 1 + len(d.events) // 2 + rng.randrange(3))):
            at = d.created + dt.timedelta(seconds=rng.uniform(0, span))
            if not C.is_workday(at.date()):
                continue
            at = max(d.created, at_time(at.date(), rng))
            x = rng.random()
            if x < 0.45:
                answered = rng.random() < 0.8
                kind = rng.choice(["Outbound", "Outbound", "Outbound", "Inbound"])
                dur = rng.randint(40, 900) if answered else 0
                self._task(who, d.id, d.owner.user_id, "Звонок" if rng.random() < 0.7 else "Call",
                           "Completed", at.date(), at, "Call", dur, kind,
                           "Дозвонился" if answered else "Нет ответа", rng)  # fmt: skip
            elif x < 0.75:
                subject = rng.choice(["Email: Коммерческое предложение", "Email: Счёт на оплату",
                                      "Email: RE: спецификация"])  # fmt: skip
                self._task(who, d.id, d.owner.user_id, subject, "Completed", at.date(), at,
                           "Email", None, "", "", rng)  # fmt: skip
            else:
                due = at.date() + dt.timedelta(days=rng.randint(1, 7))
                done = due < C.END and rng.random() < 0.8
                status = "Completed" if done else rng.choice(["Not Started", "In Progress"])
                subject = rng.choice(["Подготовить КП", "Отправить договор", "Согласовать спецификацию",
                                      "Follow up", "Выставить счёт"])  # fmt: skip
                self._task(who, d.id, d.owner.user_id, subject, status, due, at, "Task", None,
                           "", "", rng)  # fmt: skip

    def _task(self, who: str, what: str, owner: str, subject: str, status: str,
              activity: dt.date, created: dt.datetime, subtype: str, duration: int | None,
              call_type: str, disposition: str, rng: random.Random) -> None:  # fmt: skip
        closed = status == "Completed"
        self.task.row([sf_id("00T", self.task.rows + 1), who, maybe15(rng, what), owner,
                       subject, status, "High" if rng.random() < 0.15 else "Normal",
                       activity.isoformat(), sf_ts(created), b(closed), subtype,
                       "" if duration is None else str(duration), call_type, disposition, "",
                       sf_ts(created + dt.timedelta(minutes=3)), "false"])  # fmt: skip

    def _converted_lead(self, rng: random.Random, d: Deal) -> None:
        p = d.contact
        created = d.created - dt.timedelta(hours=rng.uniform(0.5, 200))
        lead = sf_id("00Q", self.lead.rows + 1)
        email = p.email if rng.random() < 0.6 else p.email.lower()
        self.lead.row([lead, "false", p.first, p.last, d.customer.name_ru, p.title, email,
                       phone_fmt(p.mobile, rng.choice(["sf", "8", "e164"])), "Closed - Converted",
                       C.LEAD_SOURCES[d.source][0], d.owner.user_id, sf_ts(created), "true",
                       d.created.date().isoformat(), maybe15(rng, account_id(d.customer)),
                       contact_id(p.idx), maybe15(rng, d.id, 0.2), d.customer.city,
                       sf_ts(d.created), ""])  # fmt: skip
        first = created + dt.timedelta(minutes=rng.uniform(4, 300))
        self._task(lead, "", d.owner.user_id, "Первичный контакт", "Completed", first.date(),
                   first, "Call", rng.randint(60, 600), "Outbound", "Дозвонился", rng)  # fmt: skip

    # --- leads that did not become deals -------------------------------------------------
    def open_leads(self, n: int) -> None:
        from . import vocab

        days = C.workdays()
        managers = self.world.managers
        deleted = 0
        for j in range(n):
            rng = rng_for(self.seed, "sf-lead", j)
            day = days[min(len(days) - 1, int((j + rng.random()) * len(days) / n))]
            created = at_time(day, rng, 8.0, 21.0)
            pool = [m for m in managers if m.team >= 0 and m.active_on(day)]
            owner = pool[rng.randrange(len(pool))]
            first = rng.choice(vocab.MALE_FIRST + vocab.FEMALE_FIRST)
            last = rng.choice(vocab.LAST) + ("а" if first in vocab.FEMALE_FIRST else "")
            company = f'ООО "{rng.choice(vocab.COMPANY_ROOTS)}{rng.choice(vocab.COMPANY_SUFFIXES)}"'
            email = f"{vocab.translit(last).lower()}@{rng.choice(vocab.FREE_MAIL)}"
            if rng.random() < 0.2:
                email = email.upper()
            age = (C.END - day).days
            if age > 30:
                status = "Closed - Not Converted" if rng.random() < 0.7 else "Working - Contacted"
            else:
                status = rng.choice(["Open - Not Contacted", "Working - Contacted"])
            is_deleted = j % 331 == 9 and deleted < 3
            deleted += is_deleted
            lead = sf_id("00Q", self.lead.rows + 1)
            self.lead.row([lead, b(is_deleted), first, last, company, "", email,
                           phone_fmt(f"9{(j * 48_271 + self.seed) % 10**9:09d}",
                                     rng.choice(["sf", "8", "e164", "bx"])),
                           status, weighted_source(rng), owner.user_id, sf_ts(created), "false",
                           "", "", "", "", "", sf_ts(created), ""])  # fmt: skip
            if is_deleted:
                self.out.faults.note("crm_salesforce/Lead.csv", f"Id {lead} IsDeleted=true")
            if status != "Open - Not Contacted" and rng.random() < 0.9:
                delay = rng.lognormvariate(4.0, 1.3)  # minutes; a long tail of slow answers
                first_at = created + dt.timedelta(minutes=delay)
                subtype = "Call" if rng.random() < 0.7 else "Email"
                self._task(lead, "", owner.user_id, "Первичный контакт", "Completed",
                           first_at.date(), first_at, subtype,
                           rng.randint(30, 400) if subtype == "Call" else None,
                           "Outbound" if subtype == "Call" else "", "", rng)  # fmt: skip


def weighted_source(rng: random.Random) -> str:
    return rng.choices([s for s, _, _ in C.LEAD_SOURCES], [w for _, _, w in C.LEAD_SOURCES])[0]
