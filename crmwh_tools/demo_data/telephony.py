"""Phone calls, simulated day by day: Asterisk CDR (2a) and the cloud PBX call log (2b).

Customers call their account manager's team (queue or direct line) and managers call
customers back; a missed inbound call gets a callback within a few working hours, later,
or never. Team "Регионы" moved to a cloud PBX on CLOUD_PBX_SINCE; everyone else is on
Asterisk, which was upgraded (18 -> 21 CDR fields, new Master.csv) on ASTERISK_UPGRADE.
"""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import random

from . import config as C
from .ids import at_time, iso_ts, mix, phone_fmt, rng_for
from .people import TEAMS, Manager, World, sales_managers
from .writers import CsvOut, Output

CLOUD_HEADER = ["call_id", "started_at", "direction", "from_number", "to_number",
                "employee_ext", "status", "wait_seconds", "talk_seconds", "recording_url"]  # fmt: skip
ROWS_PER_CALL = 1.25  # CDR legs per call x share of calls on Asterisk
EPOCH = dt.datetime(1970, 1, 1)


class Call:
    __slots__ = ("at", "inbound", "team", "manager", "number", "known", "callback")

    def __init__(self, at: dt.datetime, inbound: bool, team: int, manager: Manager,
                 number: str, known: bool, callback: bool = False) -> None:  # fmt: skip
        self.at, self.inbound, self.team, self.manager = at, inbound, team, manager
        self.number, self.known, self.callback = number, known, callback

    def __lt__(self, other: Call) -> bool:
        return self.at < other.at


class Telephony:
    def __init__(self, out: Output, world: World, cdr_rows: int) -> None:
        self.out, self.world, self.seed = out, world, world.seed
        nonum = csv.QUOTE_NONNUMERIC  # text quoted, duration/billsec/sequence bare
        self.old = out.csv(f"telephony_asterisk/{C.asterisk_old_file()}", None, quoting=nonum)
        self.new = out.csv("telephony_asterisk/Master.csv", None, quoting=nonum)
        self.cloud: CsvOut | None = None
        self.cloud_month = ""
        self.per_day = cdr_rows / (len(C.workdays()) * ROWS_PER_CALL)
        self.uid = 0
        self.chan = 0x1A2B
        self.seq = 0

    def run(self) -> None:
        self._extensions()
        carry: list[Call] = []
        day = C.START
        while day <= C.END:
            carry = self._day(day, carry)
            day += dt.timedelta(days=1)
        for w in (self.old, self.new, self.cloud):
            if w is not None:
                w.close()

    def _extensions(self) -> None:
        w = self.out.csv("telephony_asterisk/extensions.csv", ["extension", "user_id", "name"])
        for m in self.world.managers:
            if m.ext:
                uid = m.user_id[:15] if m.ext == "203" else m.user_id  # one 15-char Id
                w.row([m.ext, uid, m.name])
        w.row(["100", "", "Ресепшн"])
        w.row(["199", "", "Факс"])
        w.close()

    # --- one day of calls -------------------------------------------------------------
    def _day(self, day: dt.date, carry: list[Call]) -> list[Call]:
        rng = rng_for(self.seed, "calls", day.toordinal())
        work = C.is_workday(day)
        n = int(self.per_day * (1.0 if work else 0.03) * rng.uniform(0.8, 1.2) + rng.random())
        heap = [c for c in carry if c.at.date() == day]
        later = [c for c in carry if c.at.date() > day]
        managers = sales_managers(self.world.managers, day)
        known = self.world.known_by(day)
        for _ in range(n):
            at = at_time(day, rng, 8.7, 19.3)
            inbound = rng.random() < 0.45
            if rng.random() < 0.85:
                cust = self.world.customer(int(known * rng.random() ** 1.6))
                owner = self.world.managers[cust.owner]
                p = cust.contacts[rng.randrange(len(cust.contacts))]
                number = p.mobile if rng.random() < 0.7 else cust.phone
                team = owner.team
                mates = [m for m in managers if m.team == team]
                manager = (
                    owner if owner.active_on(day) and rng.random() < 0.6 else rng.choice(mates)
                )
                heap.append(Call(at, inbound, team, manager, number, True))
            else:
                manager = rng.choice(managers)
                number = f"9{rng.randrange(10**9):09d}"
                heap.append(Call(at, inbound, manager.team, manager, number, False))
        heapq.heapify(heap)
        while heap:
            call = heapq.heappop(heap)
            answered = self._emit(rng, call, managers)
            if call.inbound and not answered and rng.random() < (0.55 if call.known else 0.2):
                back = self._callback_time(rng, call.at)
                mates = [m for m in managers if m.team == call.team]
                who = call.manager if rng.random() < 0.6 else rng.choice(mates)
                cb = Call(back, False, call.team, who, call.number, call.known, True)
                (heapq.heappush(heap, cb) if back.date() == day else later.append(cb))
        return later

    @staticmethod
    def _callback_time(rng: random.Random, at: dt.datetime) -> dt.datetime:
        """Some working hours later: mostly the same day, sometimes days later."""
        minutes = rng.lognormvariate(4.2, 1.1)  # median ~1 h, tail of days
        t = max(at, dt.datetime.combine(at.date(), dt.time(9)))
        while True:
            close = dt.datetime.combine(t.date(), dt.time(18))
            left = (close - t).total_seconds() / 60
            if C.is_workday(t.date()) and minutes <= left:
                return t + dt.timedelta(minutes=minutes)
            if C.is_workday(t.date()) and left > 0:
                minutes -= left
            t = dt.datetime.combine(C.next_workday(t.date()), dt.time(9))

    def _emit(self, rng: random.Random, call: Call, managers: list[Manager]) -> bool:
        day = call.at.date()
        if TEAMS[call.team][1] == "cloud" and day >= C.CLOUD_PBX_SINCE:
            return self._cloud(rng, call)
        return self._asterisk(rng, call, managers)

    # --- cloud PBX: one row per call --------------------------------------------------
    def _cloud(self, rng: random.Random, call: Call) -> bool:
        month = f"{call.at:%Y-%m}"
        if month != self.cloud_month:
            if self.cloud is not None:
                self.cloud.close()
            self.cloud = self.out.csv(f"telephony_cloud/calls_{month}.csv", CLOUD_HEADER)
            self.cloud_month = month
        r = rng.random()
        status = "answered" if r < 0.8 else ("missed" if r < 0.95 else "busy")
        if call.inbound and status == "busy":
            status = "missed"
        wait = rng.randint(2, 35) if status != "busy" else 0
        talk = int(rng.lognormvariate(4.8, 0.9)) if status == "answered" else 0
        ext = call.manager.ext
        cust = f"7{call.number}"
        src, dst = (cust, C.OUR_DID) if call.inbound else (C.OUR_DID, cust)
        cid = f"{mix(self.seed, 'cloud', self.uid):016x}"
        self.uid += 1
        url = f"https://rec.cloudpbx.example/{call.at:%Y/%m/%d}/{cid}.mp3" if talk else ""
        self.cloud.row([cid, iso_ts(call.at), "in" if call.inbound else "out", src, dst,
                        ext, status, wait, talk, url])  # fmt: skip
        return status == "answered"

    # --- Asterisk: one row per leg -----------------------------------------------------
    def _asterisk(self, rng: random.Random, call: Call, managers: list[Manager]) -> bool:
        new = call.at.date() >= C.ASTERISK_UPGRADE
        epoch = int((call.at - C.MSK_OFFSET - EPOCH).total_seconds())
        self.uid += 1
        linked = f"{epoch}.{self.uid}"
        tech = TEAMS[call.team][2]
        styles = ["8", "8", "e164", "7", "paren"] if call.inbound else ["8", "8", "e164", "7"]
        shown = phone_fmt(call.number, rng.choice(styles))
        self.chan += rng.randint(1, 40)
        trunk = f"PJSIP/trunk-{self.chan:08x}"
        if not call.inbound:
            r = rng.random()
            disp = (
                "ANSWERED"
                if r < 0.62
                else "NO ANSWER"
                if r < 0.9
                else "BUSY"
                if r < 0.97
                else "FAILED"
            )
            ring = rng.randint(4, 35) if disp != "FAILED" else 0
            talk = int(rng.lognormvariate(4.7, 1.0)) + 5 if disp == "ANSWERED" else 0
            ext = call.manager.ext
            self._leg(new, linked, linked, ext, shown, "from-internal",
                      f'"{call.manager.name_lat}" <{ext}>', f"{tech}/{ext}-{self.chan + 1:08x}",
                      trunk if disp != "FAILED" else "", "Dial", f"PJSIP/{shown}@trunk,60,tT",
                      call.at, ring, talk, disp)  # fmt: skip
            return disp == "ANSWERED"
        clid = f'"{shown}" <{shown}>'
        mates = [m for m in managers if m.team == call.team and m.ext]
        if rng.random() < 0.75 and len(mates) > 1:  # through the team's queue
            ring = rng.sample(mates, min(len(mates), rng.choice([2, 3, 3])))
            answered = rng.random() < 0.8
            winner = rng.randrange(len(ring)) if answered else -1
            wait = rng.randint(3, 40) if answered else rng.randint(8, 90)
            talk = int(rng.lognormvariate(4.9, 0.9)) + 5 if answered else 0
            queue = f"700{call.team + 1}"
            for j, m in enumerate(ring):
                uid = linked if j == 0 else f"{epoch}.{self.uid + j}"
                got = j == winner
                self._leg(new, uid, linked, shown, queue, "from-trunk", clid, trunk,
                          f"{tech}/{m.ext}-{self.chan + j + 1:08x}", "Queue",
                          f"sales-{queue},t,,,300", call.at, wait if got else rng.randint(2, wait),
                          talk if got else 0, "ANSWERED" if got else "NO ANSWER")  # fmt: skip
            self.uid += len(ring)
            self.chan += len(ring)
            if answered and new and rng.random() < 0.06:  # transferred to a colleague
                a, other = ring[winner], rng.choice(mates)
                if other is not a:
                    self.uid += 1
                    start = call.at + dt.timedelta(seconds=wait + talk // 2)
                    self._leg(new, f"{epoch}.{self.uid}", linked, a.ext, other.ext,
                              "from-internal", f'"{a.name_lat}" <{a.ext}>',
                              f"{tech}/{a.ext}-{self.chan:08x}",
                              f"{TEAMS[other.team][2]}/{other.ext}-{self.chan + 1:08x}", "Dial",
                              f"{TEAMS[other.team][2]}/{other.ext},30,tr", start,
                              rng.randint(3, 15), int(rng.lognormvariate(4.5, 0.8)), "ANSWERED")  # fmt: skip
            return answered
        r = rng.random()  # direct line of the manager
        disp = "ANSWERED" if r < 0.78 else "NO ANSWER" if r < 0.95 else "BUSY"
        ext = call.manager.ext
        wait = rng.randint(3, 30)
        talk = int(rng.lognormvariate(4.8, 0.9)) + 5 if disp == "ANSWERED" else 0
        self._leg(new, linked, linked, shown, ext, "from-trunk", clid, trunk,
                  f"{tech}/{ext}-{self.chan + 1:08x}", "Dial", f"{tech}/{ext},30,tr", call.at,
                  wait if disp != "BUSY" else 0, talk, disp)  # fmt: skip
        return disp == "ANSWERED"

    def _leg(self, new: bool, uid: str, linked: str, src: str, dst: str, context: str,
             clid: str, channel: str, dstchannel: str, app: str, appdata: str,
             start: dt.datetime, ring: int, talk: int, disp: str) -> None:  # fmt: skip
        answer = start + dt.timedelta(seconds=ring) if disp == "ANSWERED" else None
        end = (
            (answer + dt.timedelta(seconds=talk)) if answer else start + dt.timedelta(seconds=ring)
        )
        row: list[object] = [
            "", src, dst, context, clid, channel, dstchannel, app, appdata, iso_ts(start),
            iso_ts(answer) if answer else "", iso_ts(end), ring + talk,
            talk if answer else 0, disp, "DOCUMENTATION", uid, "",
        ]  # fmt: skip
        if new:
            self.seq += 1
            row += ["", linked, self.seq]
            self.new.row(row)
        else:
            self.old.row(row)
