"""Scheduled delivery: `crmwh serve --reports` e-mails the Executive overview dashboard.

Everything is real: the CLI starts its PostgreSQL cluster, Redis, Superset, Celery
worker and beat; the report of dashboards/reports.yaml is scheduled every minute
(CRMWH_REPORTS_CRONTAB), Superset's scheduler queues it, the worker renders the
dashboard in headless Chromium and sends it to an SMTP sink on 127.0.0.1 run by this
test. The test then checks the message: recipient, subject, and an attached PNG that
decodes (zlib) to an image of dashboard size with more than a blank page in it.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from honcho.environ import parse_procfile

from crmwh_tools.bench import free_port
from dashboards.spec.i18n import catalogue
from pipelines.lib import reports
from tests.conftest import ROOT, Built
from tests.test_serve import pgids_alive

pytestmark = pytest.mark.slow

RECIPIENT = "ceo@example.com"
SENDER = "reports@crm-warehouse.example"


# --------------------------------------------------------------------------- SMTP sink


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes
    at: float


@dataclass
class Sink:
    port: int
    messages: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    sink: Sink

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self._reply("220 sink ESMTP")
        mail_from, rcpt = "", []
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self._reply("250-sink")
                self._reply("250 8BITMIME")
            elif verb == b"HELO":
                self._reply("250 sink")
            elif verb == b"MAIL":
                mail_from, rcpt = line.decode().split(":", 1)[1].strip(), []
                self._reply("250 OK")
            elif verb == b"RCPT":
                rcpt.append(line.decode().split(":", 1)[1].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == b"DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                chunks = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    chunks.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                self.sink.messages.append(Received(mail_from, rcpt, b"".join(chunks), time.time()))
                self.sink.arrived.set()
                self._reply("250 queued")
            elif verb in (b"RSET", b"NOOP"):
                self._reply("250 OK")
            elif verb == b"QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 not implemented")


@pytest.fixture()
def smtp_sink() -> Iterator[Sink]:
    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    sink = Sink(port=0)
    handler = type("Handler", (_SmtpHandler,), {"sink": sink})
    with Server(("127.0.0.1", 0), handler) as server:
        sink.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield sink
        server.shutdown()


# --------------------------------------------------------------------------- PNG


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG; raise if it is not whole."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header is not None, "no IHDR chunk"
    width, height, depth, color, _, _, interlace = header
    assert interlace == 0 and depth == 8, f"unexpected PNG layout {header}"
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    pixels = zlib.decompress(idat)
    assert len(pixels) == height * (1 + width * channels), "IDAT does not fill the image"
    return width, height, pixels


def test_decode_png_rejects_a_truncated_image() -> None:
    """The PNG check below can fail: a cut image or a wrong CRC is refused."""
    raw = b"".join(b"\x00" + bytes([x % 251, 7, 9]) * 4 for x in range(3))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", 4, 3, 8, 2, 0, 0, 0)
    good = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
    good += chunk(b"IEND", b"")
    assert decode_png(good)[:2] == (4, 3)
    short = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw[:-3]))
    with pytest.raises(AssertionError, match="does not fill"):
        decode_png(short + chunk(b"IEND", b""))
    with pytest.raises(AssertionError, match="bad CRC"):
        decode_png(good[:20] + b"\xff" + good[21:])


def test_reports_yaml_resolves_recipients_and_time_zone(monkeypatch) -> None:
    from pipelines.lib.settings import load_settings

    monkeypatch.delenv(reports.CRONTAB_ENV, raising=False)
    env = {"CRMWH_NOTIFICATIONS__REPORT_TO": f"[{RECIPIENT}, cfo@example.com]"}
    resolved = reports.resolve_reports(load_settings(environ=env))
    weekly = next(r for r in resolved if r["dashboard"] == "executive")
    assert weekly["crontab"] == "0 8 * * 1"  # Monday 08:00
    assert weekly["timezone"] == "Europe/Moscow"  # settings.yml company.timezone
    assert weekly["recipients"] == [RECIPIENT, "cfo@example.com"]
    bad = {"CRMWH_NOTIFICATIONS__REPORT_TO": "[not-an-address]"}
    with pytest.raises(reports.ReportsError, match="not an e-mail address"):
        reports.resolve_reports(load_settings(environ=bad))


# --------------------------------------------------------------------------- end to end


def _images(msg: EmailMessage) -> list[tuple[str, bytes]]:
    return [
        (part.get_content_type(), part.get_payload(decode=True))
        for part in msg.walk()
        if part.get_content_maintype() == "image"
    ]


@pytest.fixture()
def warehouse(request: pytest.FixtureRequest) -> tuple[Path, dict[str, str]]:
    """The demo warehouse of ``demo_build``; CRMWH_TEST_WAREHOUSE=<file> reuses a
    warehouse already built by `crmwh run` on the demo exports (local runs only)."""
    given = os.environ.get("CRMWH_TEST_WAREHOUSE")
    if given:
        assert Path(given).exists(), given
        return Path(given), dict(os.environ)
    built: Built = request.getfixturevalue("demo_build")
    return built.warehouse, built.env


def test_weekly_executive_report_arrives_by_email(
    warehouse: tuple[Path, dict[str, str]], smtp_sink: Sink
) -> None:
    # no skip: `make test` installs the Debian packages (scripts/setup_reports.sh)
    assert not reports.missing_system_packages(), "run scripts/setup_reports.sh"
    warehouse_file, base_env = warehouse
    # PostgreSQL runs as the postgres user when we are root, so its state dir must be
    # reachable by that user: not under pytest's private (0700) temporary root.
    state = Path(tempfile.mkdtemp(prefix="crmwh-reports-"))
    os.chmod(state, 0o711)
    ports = {name: free_port() for name in ("superset", "pg", "redis")}
    env = dict(
        base_env,
        CRMWH_PATHS__STATE=str(state),
        CRMWH_NOTIFICATIONS__SMTP_HOST="127.0.0.1",
        CRMWH_NOTIFICATIONS__SMTP_PORT=str(smtp_sink.port),
        CRMWH_NOTIFICATIONS__EMAIL_FROM=SENDER,
        CRMWH_NOTIFICATIONS__REPORT_TO=f"[{RECIPIENT}]",
        CRMWH_REPORTS_CRONTAB="* * * * *",
        PYTHONUNBUFFERED="1",  # the CLI's "Press Ctrl+C" line shows in the log at once
    )
    log = state / "serve.log"
    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "pipelines.cli", "serve", "--reports", "--no-dagster",
                "--warehouse", str(warehouse_file), "--port", str(ports["superset"]),
                "--pg-port", str(ports["pg"]), "--redis-port", str(ports["redis"]),
            ],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    rdir = state / "reports"
    try:
        deadline = time.monotonic() + 1200
        while "Press Ctrl+C" not in log.read_text("utf-8", "replace"):
            assert proc.poll() is None, f"crmwh serve --reports exited:\n{log.read_text()[-6000:]}"
            assert time.monotonic() < deadline, (
                f"not serving after 1200s:\n{log.read_text()[-6000:]}"
            )
            time.sleep(1)
        t_ready = time.monotonic()
        served = log.read_text("utf-8")
        assert "Reports:   Executive overview (weekly)" in served, served
        # the process list it runs under honcho, as written to <state>/Procfile
        procfile = parse_procfile((state / "Procfile").read_text("utf-8")).processes
        assert list(procfile) == ["redis", "superset", "celery-worker", "celery-beat"]
        started = {int(pid) for pid in re.findall(r" started \(pid=(\d+)\)", served)}
        assert len(started) == len(procfile), served
        # the metadata is on PostgreSQL: no SQLite file was made in this state directory
        assert not (state / "superset" / "superset.db").exists()
        assert (rdir / "postgres" / "PG_VERSION").exists()

        # beat -> reports.scheduler (every minute) -> worker: screenshot -> e-mail.
        # The first message must be the report itself: Superset mails a failed run's
        # error to the report's owners instead, and a weekly report has no second try.
        if not smtp_sink.arrived.wait(timeout=900):
            worker = (rdir / "celery-worker.log").read_text("utf-8", "replace")
            pytest.fail(f"no e-mail within 900s of serving; worker log:\n{worker[-8000:]}")
        t_mail = time.monotonic()
        first = smtp_sink.messages[0]
        if first.rcpt_to != [RECIPIENT]:
            body = email.message_from_bytes(first.data, policy=email.policy.default)
            text = "\n".join(
                str(part.get_content())
                for part in body.walk()
                if part.get_content_maintype() == "text"
            )
            worker = (rdir / "celery-worker.log").read_text("utf-8", "replace")
            pytest.fail(
                f"the first e-mail went to {first.rcpt_to}, not the recipient: "
                f"{body['Subject']}\n{text[-4000:]}\nworker log:\n{worker[-8000:]}"
            )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    t_stopped = time.monotonic()

    received = smtp_sink.messages[0]
    assert received.rcpt_to == [RECIPIENT]
    assert SENDER in received.mail_from
    msg = email.message_from_bytes(received.data, policy=email.policy.default)
    # in the dashboards' language (settings.yml dashboards.language: ru by default)
    subject = catalogue("ru")["Executive overview: week to Monday"]
    assert subject in str(msg["Subject"]), msg["Subject"]
    assert msg["To"] and RECIPIENT in str(msg["To"])
    images = _images(msg)
    assert images, f"no image in the message: {[p.get_content_type() for p in msg.walk()]}"
    content_type, png = images[0]
    assert content_type == "image/png"
    width, height, pixels = decode_png(png)
    # the dashboard window is 1600 px wide; a rendered dashboard is far from uniform
    assert width >= 800 and height >= 400, (width, height)
    assert len(png) > 20_000, len(png)
    assert len(set(pixels)) > 32, "the screenshot is (nearly) a single colour"

    # every process of the reports mode is gone after Ctrl+C / SIGTERM: each process group
    # honcho started (the Celery pool's children too), and PostgreSQL
    assert proc.returncode == 0, log.read_text("utf-8")[-4000:]
    assert pgids_alive(started) == [], log.read_text("utf-8")[-4000:]
    assert not (rdir / "postgres" / "postmaster.pid").exists()
    for name, port in ports.items():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{name} still listens on {port}"
    print(
        f"\nreports: serving after {t_ready - t0:.0f}s, e-mail {t_mail - t_ready:.0f}s later,"
        f" stopped in {t_stopped - t_mail:.0f}s; PNG {width}x{height}, {len(png)} bytes"
    )
    shutil.rmtree(state, ignore_errors=True)
