"""Identifiers and the per-system spelling of values: Salesforce Ids, INNs, phones, money."""

from __future__ import annotations

import datetime as dt
import random

from .config import MSK_OFFSET

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SPACE = 62**7
NBSP = "\u00a0"


def mix(*parts: int | str) -> int:
    """A stable 64-bit hash of the parts (splitmix64 steps; not Python's salted hash)."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        v = part if isinstance(part, int) else int.from_bytes(part.encode()[:16], "little")
        h = (h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h


def rng_for(seed: int, *parts: int | str) -> random.Random:
    """An independent random stream per (seed, purpose, index): regenerable on demand."""
    return random.Random(mix(seed, *parts))


def weighted(rng: random.Random, items: list[tuple]) -> tuple:
    """Pick one tuple whose last element is its weight."""
    return rng.choices(items, weights=[it[-1] for it in items])[0]


# --- Salesforce Ids -------------------------------------------------------------------
def sf_checksum(id15: str) -> str:
    out = ""
    for chunk in range(3):
        bits = 0
        for j, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << j
        out += _SUFFIX[bits]
    return out


def sf_id(prefix: str, n: int) -> str:
    """18-character case-safe Id: key prefix, pod, reserved char, 9-char number, checksum."""
    v = (n * 1_000_003 + mix(prefix) % _SPACE) % _SPACE  # a bijection of n: unique per object
    body = ""
    for _ in range(7):
        v, r = divmod(v, 62)
        body = _B62[r] + body
    id15 = f"{prefix}5g000{body}"
    return id15 + sf_checksum(id15)


def sf15(id18: str) -> str:
    return id18[:15]


# --- INN (Russian tax id) -------------------------------------------------------------
_W10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_W11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_W12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _check(digits: str, weights: tuple[int, ...]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 % 10)


def inn10(body9: str) -> str:
    return body9 + _check(body9, _W10)


def inn12(body10: str) -> str:
    n11 = body10 + _check(body10, _W11)
    return n11 + _check(n11, _W12)


def inn_valid(inn: str) -> bool:
    if not inn.isdigit():
        return False
    if len(inn) == 10:
        return inn[9] == _check(inn[:9], _W10)
    if len(inn) == 12:
        return inn[10] == _check(inn[:10], _W11) and inn[11] == _check(inn[:11], _W12)
    return False


def inn_typo(inn: str, rng: random.Random) -> str:
    """A keying error: two neighbouring digits swapped, or the last one changed."""
    i = rng.randrange(len(inn) - 1)
    if inn[i] != inn[i + 1]:
        return inn[:i] + inn[i + 1] + inn[i] + inn[i + 2 :]
    return inn[:-1] + str((int(inn[-1]) + 1) % 10)


# --- phones: ten national digits, e.g. "9161234567" ------------------------------------
def phone_fmt(d10: str, style: str) -> str:
    a, b, c, e = d10[:3], d10[3:6], d10[6:8], d10[8:]
    return {
        "e164": f"+7{d10}",
        "8": f"8{d10}",
        "7": f"7{d10}",
        "paren": f"({a}) {b}-{c}-{e}",
        "sf": f"+7 ({a}) {b}-{c}-{e}",
        "bx": f"8 {a} {b}-{c}-{e}",
        "bx_plus": f"+7 {a} {b}-{c}-{e}",
        "dash": f"8({a}){b}-{c}-{e}",
    }[style]


def mobile(n: int, salt: int) -> str:
    """A distinct mobile number per n (bijective in n for n < 10**7)."""
    return "9" + f"{(n * 7_654_321 + salt) % 10**9:09d}"[-9:]


# --- money: integer kopecks everywhere, spelled per system -----------------------------
def money_dot(kop: int) -> str:
    sign = "-" if kop < 0 else ""
    rub, k = divmod(abs(kop), 100)
    return f"{sign}{rub}.{k:02d}"


def money_ru(kop: int, thousands: str = "") -> str:
    """`125 000,50` (thousands separator: '', ' ' or NBSP)."""
    sign = "-" if kop < 0 else ""
    rub, k = divmod(abs(kop), 100)
    whole = f"{rub:,}".replace(",", thousands)
    return f"{sign}{whole},{k:02d}"


# --- dates and times: internal values are naive Moscow local time ----------------------
# (isoformat + slicing: several times faster than strftime, which matters at large scale)
def sf_ts(local: dt.datetime) -> str:
    """`2026-03-01T09:15:00.000Z` (UTC)."""
    return (local - MSK_OFFSET).isoformat(timespec="seconds") + ".000Z"


def iso_ts(local: dt.datetime) -> str:
    """`2026-03-01 12:15:00` (local)."""
    return local.isoformat(" ", "seconds")


def ru_ts(local: dt.datetime) -> str:
    """`01.03.2026 12:15:00` (local)."""
    s = local.isoformat(" ", "seconds")
    return f"{s[8:10]}.{s[5:7]}.{s[:4]}{s[10:]}"


def ru_date(day: dt.date) -> str:
    """`01.03.2026`."""
    s = day.isoformat()
    return f"{s[8:10]}.{s[5:7]}.{s[:4]}"


def at_time(
    day: dt.date, rng: random.Random, start_h: float = 9.0, end_h: float = 19.0
) -> dt.datetime:
    """A moment on `day` between start_h and end_h, to the second."""
    sec = int(rng.uniform(start_h, end_h) * 3600)
    return dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=sec)
