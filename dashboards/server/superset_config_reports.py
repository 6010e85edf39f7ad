"""Superset configuration overlay for scheduled reports (``crmwh serve --reports``).

``superset_config.py`` calls ``apply(globals())`` when ``CRMWH_SUPERSET_REPORTS=1``; the
values come from the environment that ``pipelines.lib.reports`` gives every Superset
process (web server, Celery worker and beat), so all three share one configuration:

- metadata on PostgreSQL (``CRMWH_SUPERSET_DATABASE_URI``): Alerts & Reports fail on
  SQLite (``SQLite DateTime type only accepts Python datetime``, apache/superset#25969);
- Celery broker and results on Redis (``CRMWH_SUPERSET_REDIS_URL``), beat running
  Superset's ``reports.scheduler`` every minute; the login throttle's counters there too;
- screenshots by Debian's headless Chromium through Debian's chromedriver, logged in as
  the fixed executor (the Superset admin), against the local web server
  (``CRMWH_SUPERSET_BASEURL``);
- e-mail through the SMTP server of ``settings.yml`` (``notifications.smtp_*``).

The environment holds no password (it lasts as long as the process and shows in
``/proc/<pid>/environ``): the PostgreSQL, Redis and SMTP passwords are read from the
private files ``postgres_password``, ``redis_password`` and ``smtp_password`` of the
folder ``CRMWH_REPORTS_DIR``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
_REQUIRED = (
    "CRMWH_REPORTS_DIR",
    "CRMWH_SUPERSET_DATABASE_URI",
    "CRMWH_SUPERSET_REDIS_URL",
    "CRMWH_SUPERSET_BASEURL",
    "CRMWH_REPORTS_EXECUTOR",
)


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _secret(name: str) -> str:
    """A password from the private file ``name`` of ``CRMWH_REPORTS_DIR`` ("" if none)."""
    path = Path(os.environ["CRMWH_REPORTS_DIR"]) / name
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


def _with_password(url: str, password: str) -> str:
    """``scheme://[user]@host…`` with ``password`` put in after the user name."""
    scheme, sep, rest = url.partition("://")
    if not sep or not password:
        return url
    user, at, host = rest.rpartition("@")
    return f"{scheme}://{quote(user)}:{quote(password, safe='')}@{host if at else rest}"


def authenticate_webdriver(driver: Any, user: Any) -> Any:
    """Log the screenshot browser in as ``user`` (``WEBDRIVER_AUTH_FUNC``).

    Superset's default opens ``/login/`` and then sets the session cookie. The login page
    is a JavaScript application whose own requests refresh the anonymous session cookie
    (``SESSION_REFRESH_EACH_REQUEST``); in a cold browser they can finish after the cookie
    was set and overwrite it. The dashboard then redirects to the login page, the
    screenshot times out, and the owners get an error mail instead of the report. That
    happened to the first report after a start on CI: the log shows no dashboard request,
    and the next run a few minutes later succeeded in 11 s. Here the cookie is set on
    ``/health``, plain text with no script and no session, and ``/api/v1/me/`` confirms
    the login before the dashboard is opened (three tries)."""
    from superset.utils.machine_auth import MachineAuthProvider
    from superset.utils.urls import headless_url

    if not hasattr(driver, "add_cookie"):  # a Playwright context: Superset's own way
        return MachineAuthProvider().authenticate_browser_context(driver, user)
    for _ in range(3):
        driver.get(headless_url("/health"))
        driver.delete_all_cookies()
        for name, value in MachineAuthProvider.get_auth_cookies(user).items():
            driver.add_cookie({"name": name, "value": value})
        driver.get(headless_url("/api/v1/me/"))
        if f'"username":"{user.username}"' in driver.page_source.replace(" ", ""):
            return driver
    logging.getLogger(__name__).warning(
        "screenshot browser: /api/v1/me/ did not confirm the login of %s after 3 tries",
        user.username,
    )
    return driver


def apply(cfg: dict[str, Any]) -> None:
    """Turn the base configuration ``cfg`` (a module's globals) into the reports one."""
    from celery.schedules import crontab
    from superset.tasks.types import FixedExecutor

    missing = [name for name in _REQUIRED if not os.environ.get(name)]
    if missing:
        raise RuntimeError(
            f"reports mode needs {', '.join(missing)}: start it with `crmwh serve --reports`"
        )
    env = os.environ
    cfg["SQLALCHEMY_DATABASE_URI"] = _with_password(
        env["CRMWH_SUPERSET_DATABASE_URI"], _secret("postgres_password")
    )
    cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
    cfg["FEATURE_FLAGS"] = {**cfg.get("FEATURE_FLAGS", {}), "ALERT_REPORTS": True}

    redis_url = _with_password(env["CRMWH_SUPERSET_REDIS_URL"], _secret("redis_password"))
    # login-throttle and Flask-Limiter counters shared by every Superset process
    cfg["RATELIMIT_STORAGE_URI"] = redis_url

    class CeleryConfig:  # Superset reads the attributes of this class
        broker_url = redis_url
        result_backend = redis_url
        imports = ("superset.sql_lab", "superset.tasks.scheduler")
        worker_prefetch_multiplier = 1
        task_acks_late = False
        broker_connection_retry_on_startup = True
        beat_schedule = {
            "reports.scheduler": {
                "task": "reports.scheduler",
                "schedule": crontab(minute="*", hour="*"),
                "options": {"expires": 7 * 24 * 3600},
            },
            "reports.prune_log": {
                "task": "reports.prune_log",
                "schedule": crontab(minute=0, hour=0),
            },
        }

    cfg["CELERY_CONFIG"] = CeleryConfig

    # Who the screenshot browser logs in as: a fixed user, so a report never depends on
    # who last edited it (and never runs as a Manager whose rows are filtered).
    cfg["ALERT_REPORTS_EXECUTORS"] = [FixedExecutor(env["CRMWH_REPORTS_EXECUTOR"])]
    cfg["ALERT_REPORTS_NOTIFICATION_DRY_RUN"] = False

    base_url = env["CRMWH_SUPERSET_BASEURL"].rstrip("/") + "/"
    cfg["WEBDRIVER_BASEURL"] = base_url
    cfg["WEBDRIVER_AUTH_FUNC"] = authenticate_webdriver
    cfg["WEBDRIVER_BASEURL_USER_FRIENDLY"] = env.get("CRMWH_SUPERSET_PUBLIC_URL") or base_url
    cfg["WEBDRIVER_TYPE"] = "chrome"
    cfg["WEBDRIVER_OPTION_ARGS"] = [
        "--headless=new",
        "--no-sandbox",  # the worker may run as root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--hide-scrollbars",
        "--no-first-run",
    ]
    # The driver path is given, so Selenium Manager (which would download a driver) is
    # never asked; Debian's chromedriver starts Debian's /usr/bin/chromium.
    cfg["WEBDRIVER_CONFIGURATION"] = {
        "options": {"capabilities": {}, "preferences": {}},
        "service": {
            "executable_path": env.get("CRMWH_CHROMEDRIVER", CHROMEDRIVER),
            "log_output": os.devnull,
            "service_args": [],
            "port": 0,
            "env": {},
        },
    }
    cfg["WEBDRIVER_WINDOW"] = {"dashboard": (1600, 2000), "slice": (1600, 1200), "pixel_density": 1}
    # Upper bounds, not delays. The first report after a start loads Superset's front-end
    # bundles into a cold browser: on a busy 2-core machine the dashboard element took
    # more than 30 s to appear, the run failed and its error went to the owners instead.
    cfg["SCREENSHOT_LOCATE_WAIT"] = 180
    cfg["SCREENSHOT_LOAD_WAIT"] = 120
    cfg["EMAIL_PAGE_RENDER_WAIT"] = 30

    cfg["SMTP_HOST"] = env.get("CRMWH_SMTP_HOST", "localhost")
    cfg["SMTP_PORT"] = int(env.get("CRMWH_SMTP_PORT", "25"))
    cfg["SMTP_STARTTLS"] = _flag("CRMWH_SMTP_STARTTLS")
    cfg["SMTP_SSL"] = _flag("CRMWH_SMTP_SSL")
    cfg["SMTP_USER"] = env.get("CRMWH_SMTP_USER", "")
    cfg["SMTP_PASSWORD"] = _secret("smtp_password")
    cfg["SMTP_MAIL_FROM"] = env.get("CRMWH_SMTP_MAIL_FROM", "crm-warehouse@localhost")
    cfg["EMAIL_REPORTS_SUBJECT_PREFIX"] = "[crm-warehouse]"
