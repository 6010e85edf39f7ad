"""Superset configuration for the CRM warehouse dashboards.

Loaded by Superset through ``SUPERSET_CONFIG_PATH`` (set by ``pipelines.lib.superset``).
Everything stateful lives under ``$CRMWH_SUPERSET_STATE`` (``state/superset`` by default),
so a checkout holds no secrets and a fresh state directory is a fresh Superset.

The secret key signs sessions and encrypts stored connection secrets, so the server
refuses to start with a missing key or one of the well-known sample keys rather than run
with a key that anybody could guess.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import timedelta
from pathlib import Path

_STATE_ENV = "CRMWH_SUPERSET_STATE"
_KNOWN_DEFAULT_KEYS = {
    "CHANGE_ME_TO_A_COMPLEX_RANDOM_SECRET",
    "thisISaSECRET_1234",
    "YOUR_OWN_RANDOM_GENERATED_SECRET_KEY",
    "TEST_NON_DEV_SECRET",
    "\2\1thisismyscretkey\1\2\\e\\y\\y\\h",
}

if not os.environ.get(_STATE_ENV):
    raise RuntimeError(
        f"{_STATE_ENV} is not set: start Superset through `pipelines.lib.superset`"
        " (crmwh), which points it at the state directory"
    )
STATE_DIR = Path(os.environ[_STATE_ENV]).resolve()


def _load_sibling(name: str):  # noqa: ANN202 - a module next to this file, by path
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# login throttle, Data Docs route, secret-key rules
_web_security = _load_sibling("web_security")
# number and date locales by language and reporting currency
_formats = _load_sibling("formats")
_secret_file = STATE_DIR / "secret_key"
try:
    _secret = _secret_file.read_text(encoding="utf-8").strip()
except FileNotFoundError:
    _secret = ""
if not _secret or _secret in _KNOWN_DEFAULT_KEYS or _secret.upper().startswith("CHANGE_ME"):
    raise RuntimeError(
        f"Refusing to start Superset: {_secret_file} is missing or a known"
        " default key. Run `crmwh` (pipelines.lib.superset.prepare) to generate one."
    )
if _key_problem := _web_security.secret_key_problem(_secret):
    raise RuntimeError(
        f"Refusing to start Superset: the secret key in {_secret_file} is not random"
        f" enough: {_key_problem}. Delete the file and run `crmwh serve` to generate one,"
        " or write the output of `openssl rand -base64 42` into it."
    )
SECRET_KEY = _secret

# Metadata (users, charts, dashboards) in a local SQLite file under the state dir.
SQLALCHEMY_DATABASE_URI = f"sqlite:///{STATE_DIR / 'superset.db'}?check_same_thread=false"
SQLALCHEMY_EXAMPLES_URI = None
SQLALCHEMY_ENGINE_OPTIONS = {"connect_args": {"timeout": 30}}
DATA_DIR = str(STATE_DIR)
UPLOAD_FOLDER = str(STATE_DIR / "uploads")

# The only analytics database is the read-only DuckDB warehouse; no file uploads,
# no unsafe connection strings, no example data.
PREVENT_UNSAFE_DB_CONNECTIONS = True
CSV_EXTENSIONS: set[str] = set()
EXCEL_EXTENSIONS: set[str] = set()
COLUMNAR_EXTENSIONS: set[str] = set()
ALLOWED_EXTENSIONS: set[str] = set()

# Language (settings.yml dashboards.language) and number formats. The interface starts in the
# configured language; a user may switch between Russian and English (the flag menu), and
# the numbers follow: "1 234 567 ₽" in Russian, "₽1,234,567" in English, with the reporting
# currency's symbol (company.reporting_currency). The dashboards' own titles and labels are
# written in the configured language when the bundle is imported.
_LANGUAGE = _formats.language_of(os.environ.get("CRMWH_DASHBOARDS_LANGUAGE"))
_CURRENCY = os.environ.get("CRMWH_REPORTING_CURRENCY") or _formats.DEFAULT_CURRENCY
BABEL_DEFAULT_LOCALE = _LANGUAGE
LANGUAGES = {
    "ru": {"flag": "ru", "name": "Русский"},
    "en": {"flag": "us", "name": "English"},
}
D3_FORMAT = _formats.d3_format(_LANGUAGE, _CURRENCY)
D3_TIME_FORMAT = _formats.d3_time_format(_LANGUAGE)
CURRENCIES = sorted({_CURRENCY, "RUB", "USD", "EUR"})


def COMMON_BOOTSTRAP_OVERRIDES_FUNC(data: dict) -> dict:  # noqa: N802 - Superset's name
    """The browser's number and time locale in the language of the user's session."""
    language = _formats.language_of(data.get("locale"))
    return {
        "d3_format": _formats.d3_format(language, _CURRENCY),
        "d3_time_format": _formats.d3_time_format(language),
    }


FEATURE_FLAGS = {
    "DASHBOARD_NATIVE_FILTERS": True,
    "DASHBOARD_CROSS_FILTERS": True,
    "ENABLE_TEMPLATE_PROCESSING": False,
    "ALERT_REPORTS": False,
    "THUMBNAILS": False,
    "ESTIMATE_QUERY_COST": False,
    "ENABLE_SUPERSET_META_DB": False,
    # dashboards list the roles that may open them (dashboards/security.yaml)
    "DASHBOARD_RBAC": True,
    # no subqueries in ad-hoc chart expressions: a role that may read a masked dataset
    # must not reach the unmasked table through `(select primary_phone from ...)`
    "ALLOW_ADHOC_SUBQUERY": False,
    # Row Level Security is for dashboards; roles with SQL Lab see whole marts
    "RLS_IN_SQLLAB": False,
}

# Sessions: signed cookies, HTTP-only, SameSite, and a working day long. Flask applies
# PERMANENT_SESSION_LIFETIME only to permanent sessions, and neither Superset nor
# Flask-AppBuilder marks them so: without FLASK_APP_MUTATOR below the session cookie would
# be a browser-session cookie whose signature never expires on the server. With it, the
# cookie carries an expiry and Flask rejects a cookie signed longer ago than the lifetime
# (refreshed on each request: 8 hours without activity log the user out).
SESSION_LIFETIME = timedelta(hours=8)
PERMANENT_SESSION_LIFETIME = SESSION_LIFETIME
SESSION_REFRESH_EACH_REQUEST = True
SESSION_COOKIE_NAME = "crmwh_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Served on 127.0.0.1 over plain HTTP; a TLS-terminating proxy in front should set
# CRMWH_SUPERSET_HTTPS=1 so cookies are marked Secure.
SESSION_COOKIE_SECURE = os.environ.get("CRMWH_SUPERSET_HTTPS") == "1"
WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = int(SESSION_LIFETIME.total_seconds())
# "Remember me" is not offered; should Flask-Login set its cookie, it lasts no longer
# than a session and is as protected.
REMEMBER_COOKIE_DURATION = SESSION_LIFETIME
REMEMBER_COOKIE_HTTPONLY = True
REMEMBER_COOKIE_SAMESITE = "Lax"
REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
# API tokens (POST /api/v1/security/login) expire like Flask-JWT-Extended's default, but
# stated: 15 minutes, refresh tokens a session long.
JWT_ACCESS_TOKEN_EXPIRES = timedelta(minutes=15)
JWT_REFRESH_TOKEN_EXPIRES = SESSION_LIFETIME


def FLASK_APP_MUTATOR(app):  # noqa: N802, ANN001, ANN201 - Superset's hook name
    """Make every session permanent, so PERMANENT_SESSION_LIFETIME applies to it."""
    from flask import session

    @app.before_request
    def _permanent_session():  # noqa: ANN202
        session.permanent = True

    _web_security.install(app)  # login throttle and the Data Docs at /crmwh/data-docs/
    _access_guard.install(app)  # chart SQL rules, SQL Lab time limits (access_guard.py)


# Security headers (flask-talisman): a strict CSP with no third-party origins (this
# server has no internet), no framing, no referrer leaks.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
        "frame-ancestors": ["'none'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": SESSION_COOKIE_SECURE,
    "frame_options": "DENY",
    "referrer_policy": "same-origin",
    "permissions_policy": {"camera": "()", "microphone": "()", "geolocation": "()"},
}
TALISMAN_DEV_CONFIG = TALISMAN_CONFIG
HTTP_HEADERS = {"X-Content-Type-Options": "nosniff"}

# Throttle login attempts even on a local server. Flask-AppBuilder's AUTH_RATE_LIMIT
# covers only POSTs to the form login (/login/), not the API login
# (/api/v1/security/login), and counts every attempt, so a flood cap is all it can be.
# The throttle of web_security.py counts failed attempts on both endpoints and refuses
# a client and user name (then a user name, then a client) over these limits with 429
# until the window has passed. Counters: memory of the one gunicorn worker here; the
# reports mode puts them (and Flask-Limiter's) on its Redis, shared by every process.
RATELIMIT_ENABLED = True
AUTH_RATE_LIMITED = True
AUTH_RATE_LIMIT = "10 per second"
RATELIMIT_STORAGE_URI = "memory://"
# Superset's own cap on every request of one client (RATELIMIT_APPLICATION, 50 per second)
# stays; its refusals carry Retry-After and the X-RateLimit-* headers like the throttle's.
RATELIMIT_HEADERS_ENABLED = True
CRMWH_LOGIN_FAILURE_LIMITS = dict(_web_security.DEFAULT_LOGIN_LIMITS)

# The GX Data Docs (/crmwh/data-docs/) show samples of the checked raw data: only these
# roles may open them (Finance is the one non-admin role that sees raw contacts).
CRMWH_DATA_DOCS_ROLES = {"Admin", "Finance"}

# Small local instance: no Celery, in-process caches. Chart results are kept for a day
# under keys prefixed by the published warehouse version (published_cache.py): a publish
# makes every older entry unreadable at once (and drops them from memory). Datasets whose
# SQL reads the clock set their own cache_timeout (dashboards/spec). With no served file
# (a Spark Thrift server's marts), nothing marks a new version: results are kept five
# minutes, Superset's default.
# (registered lazily: it imports flask-caching, which only Superset's venv has, when
# Superset resolves CACHE_TYPE)
_cache_spec = importlib.util.spec_from_file_location(
    "crmwh_published_cache", Path(__file__).with_name("published_cache.py")
)
_cache_spec.loader = importlib.util.LazyLoader(_cache_spec.loader)
sys.modules["crmwh_published_cache"] = importlib.util.module_from_spec(_cache_spec)
_cache_spec.loader.exec_module(sys.modules["crmwh_published_cache"])
_VERSIONED = bool(os.environ.get("CRMWH_SERVED_FILES"))  # published_cache.SERVED_FILES_ENV
CACHE_CONFIG = {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300}
DATA_CACHE_CONFIG = {
    "CACHE_TYPE": "crmwh_published_cache.PublishedVersionCache",
    "CACHE_DEFAULT_TIMEOUT": 24 * 3600 if _VERSIONED else 300,
    "CACHE_THRESHOLD": 1000,
}
ROW_LIMIT = 50000
# Query limits, enforced by a watchdog that interrupts the DuckDB query (access_guard.py):
# SQL Lab queries stop after SQLLAB_TIMEOUT seconds (CRMWH_SQLLAB_TIMEOUT in the server's
# environment overrides it), chart queries 10 s before the web server's timeout. SQL Lab
# returns at most SQL_MAX_ROW rows and shows DISPLAY_MAX_ROW of them.
SQL_MAX_ROW = 100000
DISPLAY_MAX_ROW = 10000
SQLLAB_TIMEOUT = int(os.environ.get("CRMWH_SQLLAB_TIMEOUT") or 60)
SUPERSET_WEBSERVER_TIMEOUT = 120
# Custom SQL in charts refused for roles that may not send it, and SQL Lab of every user
# but Admin connected to the masked warehouse whatever database they pick (access_guard.py).
_access_guard = _load_sibling("access_guard")
DB_CONNECTION_MUTATOR = _access_guard.connection_mutator
# A Spark Thrift server as the database (`crmwh serve --engine spark-thrift`): PyHive's
# dialect would cut metric expressions with two dots (spark_dialect.py).
_load_sibling("spark_dialect").patch()
LOG_LEVEL = os.environ.get("CRMWH_SUPERSET_LOG_LEVEL", "WARNING")

# Scheduled reports (`crmwh serve --reports`): PostgreSQL metadata, Redis, Celery and
# Chromium, all in the overlay next to this file; without it nothing above changes.
if os.environ.get("CRMWH_SUPERSET_REPORTS") == "1":
    import importlib.util as _ilu

    _spec = _ilu.spec_from_file_location(
        "superset_config_reports", Path(__file__).with_name("superset_config_reports.py")
    )
    _overlay = _ilu.module_from_spec(_spec)
    _spec.loader.exec_module(_overlay)
    _overlay.apply(globals())

# `kill -USR2 <gunicorn worker pid>` writes every thread's Python stack to the server's log
# (state/superset/server.log) and the worker goes on: what a request that never answers is
# waiting on. gunicorn's workers leave SIGUSR2 unused; the handler is set after theirs.
import faulthandler  # noqa: E402
import signal  # noqa: E402

if hasattr(signal, "SIGUSR2"):
    faulthandler.register(signal.SIGUSR2, all_threads=True)
