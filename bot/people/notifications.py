"""Telling a person about an alert: an SMS to an on-call number, an email over SMTP, a post to a
chat webhook. Each says what happened and where to look; never the participant's number or words.

A channel that fails is recorded and never stops the others; no password or webhook path is
ever written to a log or an error.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from sqlmodel import Session

from bot.people.oncall import masked, staff_zone
from bot.settings import Settings
from bot.store.models import Alert, InboundMessage

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for each SMTP or webhook exchange


class SmsSender(Protocol):
    """Sends a text through the provider: bot.delivery.provider.SmsSender, handed in by the
    process that runs escalation (human support sits below delivery in the layout)."""

    def send(self, *, to: str, body: str) -> Any: ...  # .sid; raises with "code: message"


@dataclass(frozen=True)
class Attempt:
    """One message to one person or place, and how it went."""

    channel: str  # sms, email, webhook
    target: str  # the number, the address, the webhook's host
    error: str | None = None  # None: handed over (to the provider, the mail server, the hook)
    provider_sid: str | None = None

    @property
    def sent(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class AlertNews:
    """What a notification may say about an alert: no number, no words of the participant."""

    alert_id: int
    what: str  # "crisis alert 12 (suicide)"
    who: str  # "participant 45", or "an unenrolled number ending 0142"
    raised_at: datetime
    link: str  # where to look: the alert in the console
    round: int  # 0 at once, then one per escalation
    waited_minutes: int  # since the alert was raised
    enrolled: bool = True

    @property
    def headline(self) -> str:
        if self.round == 0:
            return f"Tend: {self.what} for {self.who}."
        return (f"Tend: {self.what} for {self.who} is still not acknowledged after "
                f"{self.waited_minutes} min.")


def alert_link(settings: Settings, alert_id: int) -> str:
    """Where staff see and acknowledge an alert: its page in the console."""
    return f"{settings.public_base_url}/console/alerts/{alert_id}"


def news_of(
    *, session: Session, settings: Settings, alert: Alert, round_: int, moment: datetime
) -> AlertNews:
    what = f"{alert.kind} alert {alert.id}" + (f" ({alert.category})" if alert.category else "")
    if alert.participant_id is not None:
        who = f"participant {alert.participant_id}"
    else:
        message = session.get(InboundMessage, alert.inbound_message_id or 0)
        digits = "".join(c for c in (message.from_phone if message else "") if c.isdigit())
        who = f"an unenrolled number ending {digits[-4:]}" if digits else "an unenrolled number"
    return AlertNews(
        alert_id=alert.id or 0, what=what, who=who, raised_at=alert.created_at,
        link=alert_link(settings, alert.id or 0), round=round_,
        waited_minutes=int((moment - alert.created_at).total_seconds() // 60),
        enrolled=alert.participant_id is not None,
    )


def sms_text(news: AlertNews) -> str:
    """Plain GSM characters only: a bullet or a dash would make the text UCS-2, twice as long."""
    return f"{news.headline} Open {news.link} - reply ACK {news.alert_id} when you have it."


def chat_text(news: AlertNews) -> str:
    return (f"{news.headline} Open {news.link} and acknowledge it there, or reply "
            f"ACK {news.alert_id} to the on-call text.")


def email_of(settings: Settings, news: AlertNews, recipients: list[str]) -> EmailMessage:
    raised = news.raised_at.astimezone(staff_zone(settings))
    what = news.what[:1].upper() + news.what[1:]
    message = EmailMessage()
    message["Subject"] = f"[Tend] {what}" + (
        f": still not acknowledged after {news.waited_minutes} min" if news.round else "")
    message["From"] = settings.alert_from_email
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="tend.alerts")
    lines = [news.headline.removeprefix("Tend: "), ""]
    if news.what.startswith("crisis"):
        paused = " and paused their automated messages" if news.enrolled else ""
        lines += [f"They texted crisis language. Tend answered with the crisis resources"
                  f"{paused}.", ""]
    lines += [f"Raised: {raised:%A %d %B %Y, %H:%M} {raised.tzname()}"]
    if news.round:
        lines += [f"Escalation round {news.round + 1}: nobody has acknowledged it yet."]
    lines += [
        "", f"Open the alert: {news.link}",
        f"Acknowledge it there, or reply ACK {news.alert_id} to the on-call text; until then "
        f"it escalates every {settings.escalate_after_minutes} minutes.",
        "", "The participant's number and messages are not in this email: they are in the "
        "console.",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def _scrubbed(settings: Settings, text: str) -> str:
    """`text` with the SMTP password and the webhook URL's path taken out."""
    secrets = []
    smtp = urlsplit(settings.smtp_url) if settings.smtp_url else None
    if smtp is not None and smtp.password:
        secrets += [smtp.password, unquote(smtp.password)]
    if settings.alert_webhook_url:
        hook = urlsplit(settings.alert_webhook_url)
        secrets += [settings.alert_webhook_url, hook.path, hook.query]
    for secret in sorted({s for s in secrets if len(s) > 1}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text[:500]


def send_sms(sender: SmsSender, to: str, text: str) -> Attempt:
    try:
        sent = sender.send(to=to, body=text)
    except Exception as exc:  # the provider's refusal, or no answer
        return Attempt("sms", to, error=str(exc)[:500])
    return Attempt("sms", to, provider_sid=str(sent.sid))


def _on_this_machine(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _smtp_session(settings: Settings) -> smtplib.SMTP:
    """A logged-in SMTP session: TLS from the start (smtps) or STARTTLS whenever offered; the
    password is never sent unencrypted to a server that is not on this machine."""
    url = urlsplit(settings.smtp_url)
    host = url.hostname or ""
    context = ssl.create_default_context()
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, url.port or 465, timeout=TIMEOUT,
                                                context=context)
    else:
        client = smtplib.SMTP(host, url.port or 587, timeout=TIMEOUT)
    try:
        client.ehlo()
        encrypted = url.scheme == "smtps"
        if not encrypted and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
            encrypted = True
        if url.username:
            if not encrypted and not _on_this_machine(host):
                raise smtplib.SMTPNotSupportedError(
                    "the server offers no STARTTLS; the password is not sent unencrypted")
            client.login(unquote(url.username), unquote(url.password or ""))
    except BaseException:
        client.close()
        raise
    return client


def send_email(settings: Settings, news: AlertNews) -> list[Attempt]:
    """One email to every alert address; an address the server refuses fails alone."""
    recipients = list(settings.alert_emails)
    addresses = [parseaddr(r)[1] for r in recipients]
    try:
        with _smtp_session(settings) as client:
            refused = client.send_message(email_of(settings, news, recipients),
                                          to_addrs=addresses)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
    except Exception as exc:
        error = _scrubbed(settings, f"{type(exc).__name__}: {exc}")
        return [Attempt("email", address, error=error) for address in addresses]
    return [
        Attempt("email", address, error=_scrubbed(settings, f"refused: {refused[address]}")
                if address in refused else None)
        for address in addresses
    ]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is a failure: the post did not reach the hook


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_webhook(settings: Settings, text: str) -> Attempt:
    """POST `{"text": ...}` (Slack and Teams incoming webhooks); anything but 2xx fails."""
    host = urlsplit(settings.alert_webhook_url).hostname or "webhook"
    request = urllib.request.Request(
        settings.alert_webhook_url, data=json.dumps({"text": text}).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "Tend alerts"},
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except Exception as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt("webhook", host, error=_scrubbed(settings, f"{type(exc).__name__}: "
                                                                  f"{reason}"))
    if not 200 <= status < 300:
        return Attempt("webhook", host, error=f"the webhook answered HTTP {status}")
    return Attempt("webhook", host)


def notify(
    settings: Settings, news: AlertNews, *, sms_to: str | None, sender: SmsSender | None
) -> list[Attempt]:
    """Every configured channel at once (in parallel: a slow mail server delays no SMS)."""
    work: list[tuple[str, list[str], Callable[[], list[Attempt]]]] = []
    if sms_to and sender is not None:
        work.append(("sms", [sms_to], lambda: [send_sms(sender, sms_to, sms_text(news))]))
    if settings.alert_emails and settings.smtp_url:
        work.append(("email", [parseaddr(r)[1] for r in settings.alert_emails],
                     lambda: send_email(settings, news)))
    if settings.alert_webhook_url:
        host = urlsplit(settings.alert_webhook_url).hostname or "webhook"
        work.append(("webhook", [host], lambda: [post_webhook(settings, chat_text(news))]))
    if not work:
        return []

    def run(channel: str, targets: list[str], job: Callable[[], list[Attempt]]) -> list[Attempt]:
        try:
            return job()
        except Exception as exc:  # a fault in one channel never silences the others
            log.exception("alert %s: the %s channel broke", news.alert_id, channel)
            error = _scrubbed(settings, f"{type(exc).__name__}: {exc}")
            return [Attempt(channel, target, error=error) for target in targets]

    with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="notify") as pool:
        attempts = [a for batch in pool.map(lambda item: run(*item), work) for a in batch]
    for attempt in attempts:
        shown = masked(attempt.target) if attempt.channel == "sms" else attempt.target
        if attempt.sent:
            log.info("alert %s round %s: %s to %s sent", news.alert_id, news.round,
                     attempt.channel, shown)
        else:
            log.warning("alert %s round %s: %s to %s failed: %s", news.alert_id, news.round,
                        attempt.channel, shown, attempt.error)
    return attempts
