"""Create or update the scheduled reports of ``dashboards/reports.yaml`` in Superset.

Runs inside the Superset virtual environment (``.venv-superset/bin/python``), started by
``pipelines.lib.reports.apply_schedules`` with the reports already resolved (recipients,
time zone and crontab taken from the settings) as JSON on stdin::

    {"owner": "admin", "reports": [{"name": ..., "dashboard": "executive", ...}]}

Each report is matched by name and created or updated through Superset's own report
commands (the ones behind ``/api/v1/report/``), so validation is Superset's and a second
run changes nothing. Prints one JSON line: ``{"<name>": <report id>, ...}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _payload(report: dict[str, Any], dashboard_id: int, owner_id: int) -> dict[str, Any]:
    recipients = report["recipients"]
    return {
        "type": "Report",
        "name": report["name"],
        "description": report.get("description") or "",
        "crontab": report["crontab"],
        "timezone": report["timezone"],
        "dashboard": dashboard_id,
        "report_format": report.get("format", "PNG"),
        "email_subject": report.get("email_subject") or report["name"],
        "creation_method": "alerts_reports",
        "owners": [owner_id],
        "working_timeout": int(report.get("working_timeout_seconds", 900)),
        "log_retention": 90,
        "force_screenshot": True,
        # without recipients there is no one to send to: keep the schedule, inactive
        "active": bool(recipients),
        "recipients": [{"type": "Email", "recipient_config_json": {"target": ",".join(recipients)}}]
        if recipients
        else [],
    }


def main() -> int:
    """Apply the reports read from stdin; return the process exit code."""
    spec = json.load(sys.stdin)
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import db, security_manager
        from superset.commands.report.create import CreateReportScheduleCommand
        from superset.commands.report.update import UpdateReportScheduleCommand
        from superset.models.dashboard import Dashboard
        from superset.reports.models import ReportSchedule
        from superset.utils.core import override_user

        owner = security_manager.find_user(username=spec["owner"])
        if owner is None:
            print(f"no such Superset user: {spec['owner']}", file=sys.stderr)
            return 2
        applied: dict[str, int] = {}
        with override_user(owner):
            for report in spec["reports"]:
                dashboard = (
                    db.session.query(Dashboard).filter_by(slug=report["dashboard"]).one_or_none()
                )
                if dashboard is None:
                    print(
                        f"{report['name']}: no dashboard with slug {report['dashboard']!r}",
                        file=sys.stderr,
                    )
                    return 1
                data = _payload(report, dashboard.id, owner.id)
                existing = (
                    db.session.query(ReportSchedule)
                    .filter_by(name=report["name"], type="Report")
                    .one_or_none()
                )
                try:
                    if existing is None:
                        model = CreateReportScheduleCommand(data).run()
                    else:
                        data.pop("type")
                        model = UpdateReportScheduleCommand(existing.id, data).run()
                except Exception as exc:  # noqa: BLE001 - report Superset's validation as is
                    messages = getattr(exc, "normalized_messages", None)
                    detail = json.dumps(messages()) if callable(messages) else str(exc)
                    print(f"{report['name']}: {type(exc).__name__}: {detail}", file=sys.stderr)
                    return 1
                applied[report["name"]] = model.id
    print(json.dumps(applied))
    return 0


if __name__ == "__main__":
    sys.exit(main())
