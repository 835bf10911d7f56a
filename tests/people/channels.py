"""Real servers for the notification channels, each on a free local port, recording what reached
them: an SMTP server (aiosmtpd, optionally with a login and STARTTLS) and a chat webhook
(http.server). And the crisis a participant texts, through the real inbound path."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bot.care.programs import load_programs
from bot.conversation.inbound import handle_inbound
from bot.participants.enrollment import enroll
from bot.people.escalation import schedule_first_notification
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import Alert
from tests.conftest import inbound_params

# aiosmtpd warns when it asks for a password without TLS: here it is on this machine only.
PLAIN_LOGIN = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
SMTP_USER = "tend-alerts"
SMTP_PASSWORD = "s3cret-smtp-Pa55"
HOOK_SECRET = "T000/B000/hooksecretXYZ"
# The on-call rota of a small study team, in order, and the team's shared inbox.
ONCALL = ("+14155550101", "+14155550102", "+14155550103")
TEAM = "study-team@clinic.example.org"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class Received:
    message: EmailMessage
    recipients: list[str]
    tls: bool
    login: str | None

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


class MailServer:
    """An SMTP server that keeps every message it accepts."""

    def __init__(self, *, host: str = "127.0.0.1", login: bool = False,
                 tls: ssl.SSLContext | None = None, implicit: bool = False) -> None:
        self.received: list[Received] = []
        self.refused: set[str] = set()  # addresses it answers "no such mailbox"
        self.host, self.port = host, free_port(host)
        self.login = login
        options: dict[str, Any] = {}
        if login:
            # (aiosmtpd counts only STARTTLS as TLS when it decides whether to offer AUTH)
            options |= {"authenticator": self._authenticate, "auth_required": True,
                        "auth_require_tls": tls is not None and not implicit}
        self.scheme = "smtps" if implicit else "smtp"
        if tls is not None:
            options["ssl_context" if implicit else "tls_context"] = tls
        self.controller = Controller(self, hostname=host, port=self.port, **options)
        self.controller.start()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(), SMTP_PASSWORD.encode())
        return AuthResult(success=ok, handled=False, auth_data=data)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        if address in self.refused:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        data = session.auth_data
        login = data.login.decode() if isinstance(data, LoginPassword) else None
        self.received.append(Received(message, list(envelope.rcpt_tos),  # type: ignore[arg-type]
                                      session.ssl is not None, login))
        return "250 Message accepted for delivery"

    def url(self, password: str = SMTP_PASSWORD) -> str:
        auth = f"{SMTP_USER}:{password}@" if self.login else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}"

    def stop(self) -> None:
        if self.controller._thread is not None:
            self.controller.stop()


@dataclass
class Posted:
    path: str
    content_type: str
    payload: Any


class HookServer:
    """A chat webhook (as Slack and Teams offer) that answers `status` to every post."""

    def __init__(self) -> None:
        self.posts: list[Posted] = []
        self.status = 200
        self.arrived = threading.Event()  # set by the first post
        self.hold: threading.Event | None = None  # set: each answer waits for it
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.posts.append(Posted(self.path, self.headers.get("Content-Type", ""),
                                         json.loads(body or b"null")))
                hook.arrived.set()
                if hook.hold is not None:
                    hook.hold.wait(10)
                self.send_response(hook.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/{HOOK_SECRET}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="mail")
def mail_servers() -> Iterator[Callable[..., MailServer]]:
    """Start SMTP servers (login=True for one that asks for the password)."""
    servers: list[MailServer] = []

    def start(**options: Any) -> MailServer:
        servers.append(MailServer(**options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(name="hook")
def hook_server() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.stop()


def tls_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server certificate for 127.0.0.1 that this process (and only it) trusts."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate for the STARTTLS server")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # what ssl.create_default_context() trusts
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def alerting(settings: Settings, mail: MailServer | None = None, hook: HookServer | None = None,
             **more: Any) -> Settings:
    """`settings` with the team's channels: the rota, and email and webhook when given."""
    channels: dict[str, Any] = {"oncall_phones": ONCALL}
    if mail is not None:
        channels |= {"alert_emails": (TEAM,), "smtp_url": mail.url(),
                     "alert_from_email": "Tend <tend@clinic.example.org>"}
    if hook is not None:
        channels["alert_webhook_url"] = hook.url
    return settings.with_overrides(**(channels | more))


def enroll_participant(engine: Engine, settings: Settings, phone: str) -> int:
    with session_scope(engine) as session:
        program = load_programs(settings.narratives_dir)["daily-checkin"]
        participant = enroll(session=session, phone=phone, program=program,
                             timezone="America/Chicago", via="cli", welcome_now=False)
        session.flush()
        return participant.id or 0


def text_crisis(engine: Engine, settings: Settings, phone: str, body: str) -> Alert:
    """`phone` texts crisis language through the inbound path; its alert is scheduled to
    notify at once, as raising a crisis alert does."""
    with session_scope(engine) as session:
        handle_inbound(session=session, settings=settings, programs={},
                       form=inbound_params(phone, body))
    with session_scope(engine) as session:
        alert = session.exec(select(Alert).order_by(col(Alert.id).desc())).first()
        assert alert is not None and alert.kind == "crisis"
        if alert.next_escalation_at is None:
            schedule_first_notification(alert, alert.created_at)
            session.add(alert)
    return alert
