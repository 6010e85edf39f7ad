"""Number and date formats of the dashboards, by language and reporting currency.

Read by ``superset_config.py`` (inside Superset's own environment, so this module imports
nothing outside the standard library) to give the browser its d3 number and time locale:
thousands and decimal marks, the currency's symbol and side, month and day names. The
charts' formats (``dashboards.spec.model``: ``$,.0f`` for money, ``,.1f`` for durations,
``.1%`` for shares) then read "1 234 567 ₽" in Russian and "₽1,234,567" in English.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
DEFAULT_CURRENCY = "RUB"

#: the symbol of a reporting currency; another ISO code is written as the code itself
CURRENCY_SYMBOLS = {
    "RUB": "₽",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "CNY": "¥",
    "KZT": "₸",
    "UAH": "₴",
    "BYN": "Br",
    "AMD": "֏",
    "GEL": "₾",
    "UZS": "сўм",
}

NBSP = "\u00a0"


def currency_symbol(currency: str) -> str:
    """The mark money carries: the symbol of ``currency`` or its ISO code."""
    code = (currency or "").strip().upper()
    return CURRENCY_SYMBOLS.get(code, code)


def language_of(locale: Any) -> str:
    """One of ``LANGUAGES`` for a Babel locale, a string such as ``ru_RU`` or None."""
    text = str(getattr(locale, "language", locale) or "").lower()[:2]
    return text if text in LANGUAGES else DEFAULT_LANGUAGE


def d3_format(language: str, currency: str) -> dict[str, Any]:
    """d3-format's locale: Russian "1 234,5 ₽", English "₽1,234.5" (code after the number
    where the currency has no one-character symbol: "1,234.5 KZT" style)."""
    symbol = currency_symbol(currency)
    if language_of(language) == "ru":
        return {
            "decimal": ",",
            "thousands": NBSP,
            "grouping": [3],
            "currency": ["", NBSP + symbol],
        }
    side = [symbol, ""] if len(symbol) == 1 else ["", NBSP + symbol]
    return {"decimal": ".", "thousands": ",", "grouping": [3], "currency": side}


_RU_TIME = {
    "dateTime": "%A, %e %B %Y г. %X",
    "date": "%d.%m.%Y",
    "time": "%H:%M:%S",
    "periods": ["", ""],
    "days": ["воскресенье", "понедельник", "вторник", "среда", "четверг", "пятница", "суббота"],
    "shortDays": ["вс", "пн", "вт", "ср", "чт", "пт", "сб"],
    "months": [
        "январь", "февраль", "март", "апрель", "май", "июнь",
        "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь",
    ],
    "shortMonths": [
        "янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек",
    ],
}  # fmt: skip


def d3_time_format(language: str) -> dict[str, Any]:
    """d3-time-format's locale: Russian month and day names, or d3's English default."""
    return dict(_RU_TIME) if language_of(language) == "ru" else {}
