"""Failure notifications: always a log line, and an e-mail when SMTP is configured."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from pipelines.lib.settings import Settings

log = logging.getLogger("crmwh.notify")


def notify_failure(settings: Settings, subject: str, body: str) -> bool:
    """Log the failure; e-mail it through `notifications.smtp_*` when a host is set.

    Returns whether an e-mail was sent.
    """
    log.error("%s\n%s", subject, body)
    cfg = settings.section("notifications")
    host, recipients = cfg.get("smtp_host"), cfg.get("email_to") or []
    if not host or not recipients:
        return False
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = cfg.get("email_from", "crm-warehouse@localhost")
    msg["To"] = ", ".join(recipients if isinstance(recipients, list) else [recipients])
    msg.set_content(body)
    with smtplib.SMTP(host, int(cfg.get("smtp_port", 25)), timeout=30) as smtp:
        if cfg.get("smtp_starttls"):
            smtp.starttls()
        if cfg.get("smtp_user"):
            smtp.login(cfg["smtp_user"], cfg.get("smtp_password", ""))
        smtp.send_message(msg)
    return True
