"""The channels that tell a person about a crisis: SMS through the provider (the sandbox), email
over a real SMTP server, a post to a real local webhook; each attempt recorded, a failing one
never stopping the others, and never a number, a participant's words or a secret given away."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from bot.delivery.encoding import encode
from bot.delivery.provider import SmsSender
from bot.people.escalation import notify_due
from bot.settings import Settings, SettingsError
from bot.store.support import Notification
from tests.people.channels import (
    HOOK_SECRET,
    ONCALL,
    PLAIN_LOGIN,
    SMTP_PASSWORD,
    TEAM,
    alerting,
    enroll_participant,
    hook_server,  # noqa: F401  (the hook fixture)
    mail_servers,  # noqa: F401  (the mail fixture)
    text_crisis,
    tls_context,
)

pytestmark = PLAIN_LOGIN

# Sam is enrolled in daily check-ins and texts that he wants to die.
SAM = "+14155550142"
SAM_WORDS = "i cant do this anymore i want to die"
# Someone who never enrolled texts crisis language to the study number.
STRANGER = "+14155550199"


def notifications(session: Session) -> list[Notification]:
    session.expire_all()
    return list(session.exec(select(Notification).order_by(col(Notification.id))))


def tell(engine, settings: Settings, alert) -> int:
    return notify_due(engine, settings, alert.created_at + timedelta(seconds=1), sms=SmsSender)


# --- settings ---------------------------------------------------------------------------------


def test_the_channels_are_read_from_the_environment() -> None:
    settings = Settings.from_env({
        "ONCALL_PHONES": "+14155550101, +14155550102",
        "ALERT_EMAILS": "coach@clinic.example.org,Study team <team@clinic.example.org>",
        "SMTP_URL": "smtp://alerts:pw@smtp.example.org:587",
        "ALERT_FROM_EMAIL": "Tend <tend@clinic.example.org>",
        "ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x",
        "ESCALATE_AFTER_MINUTES": "5",
    })
    assert settings.oncall_phones == ("+14155550101", "+14155550102")
    assert settings.alert_emails == (
        "coach@clinic.example.org", "Study team <team@clinic.example.org>")
    assert settings.escalate_after_minutes == 5
    assert Settings.from_env({}).escalate_after_minutes == 10


def test_production_names_every_bad_alert_setting_at_once_and_never_repeats_a_secret() -> None:
    environ = {
        "TEND_ENV": "production",
        "ONCALL_PHONES": "+14155550101,415 555 0102",
        "ALERT_EMAILS": "coach@clinic.example.org, not-an-address",
        "SMTP_URL": "mail.example.org:587/pw-in-here",
        "ALERT_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/secret-path",
        "ESCALATE_AFTER_MINUTES": "0",
        "STAFFED_HOURS": "weekdays 9-5",
        "STAFFED_TIMEZONE": "Mars/Base",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    problems = caught.value.problems
    for expected in (
        "ONCALL_PHONES must be E.164 numbers like +14155550123, not ••••••••0102",
        "ALERT_EMAILS must be email addresses like tend@example.org, not 'not-an-address'",
        "SMTP_URL must look like smtp://user:password@host:587 (or smtps://)",
        "ALERT_WEBHOOK_URL must look like an http(s) URL",
        "ESCALATE_AFTER_MINUTES must be at least 1, not 0",
        "STAFFED_HOURS must be days and hours like 'Mon-Fri 09:00-17:00' (several: "
        "comma-separated), not 'weekdays 9-5'",
        "STAFFED_TIMEZONE must be an IANA zone like America/New_York, not 'Mars/Base'",
        "SECRET_KEY is the development default",
    ):
        assert expected in problems
    assert "pw-in-here" not in str(caught.value) and "secret-path" not in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"ALERT_EMAILS": "a@clinic.example.org", "ALERT_FROM_EMAIL": "t@clinic.example.org"},
         "ALERT_EMAILS needs SMTP_URL (the server that sends them)"),
        ({"ALERT_EMAILS": "a@clinic.example.org", "SMTP_URL": "smtp://h.example.org"},
         "ALERT_EMAILS needs ALERT_FROM_EMAIL (the address they come from)"),
        ({"TEND_ENV": "production", "ALERT_WEBHOOK_URL": "http://hooks.example.org/x"},
         "ALERT_WEBHOOK_URL must be https in production (its path is a secret)"),
    ],
)
def test_a_channel_that_could_never_reach_anyone_is_refused(environ, problem) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    assert problem in caught.value.problems


def test_numbers_set_in_code_are_checked_too() -> None:
    with pytest.raises(SettingsError, match="ONCALL_PHONES must be E.164"):
        Settings().with_overrides(oncall_phones=("4155550101",))


# --- SMS --------------------------------------------------------------------------------------


def test_the_on_call_text_says_what_happened_and_where_to_look_and_nothing_private(
    stack, engine, session
):
    settings = alerting(stack.settings)
    sam = enroll_participant(engine, settings, SAM)
    alert = text_crisis(engine, settings, SAM, SAM_WORDS)
    assert tell(engine, settings, alert) == 1
    [text] = stack.outbound_to(ONCALL[0])
    assert text.body == (
        f"Tend: crisis alert {alert.id} (suicide) for participant {sam}. Open "
        f"{settings.public_base_url}/console/alerts/{alert.id} - reply ACK {alert.id} when "
        f"you have it."
    )
    assert SAM[-7:] not in text.body and "die" not in text.body
    assert encode(text.body).encoding == "GSM-7"
    [sent] = notifications(session)
    assert (sent.channel, sent.target, sent.status, sent.round) == ("sms", ONCALL[0], "sent", 0)
    assert sent.provider_sid == text.sid and sent.error is None


def test_a_number_that_is_not_enrolled_is_named_by_its_last_four_digits(stack, engine):
    settings = alerting(stack.settings)
    alert = text_crisis(engine, settings, STRANGER, "i want to kill myself")
    tell(engine, settings, alert)
    [text] = stack.outbound_to(ONCALL[0])
    assert "for an unenrolled number ending 0199." in text.body
    assert STRANGER not in text.body and "kill" not in text.body


def test_a_text_the_provider_refuses_is_recorded_failed_with_its_error(stack, engine, session):
    settings = alerting(stack.settings)
    alert = text_crisis(engine, settings, SAM, SAM_WORDS)
    stack.faults([{"status": 400, "code": 21610}], to=ONCALL[0])
    tell(engine, settings, alert)
    [failed] = notifications(session)
    assert (failed.channel, failed.status, failed.sent_at) == ("sms", "failed", None)
    assert failed.error is not None and failed.error.startswith("21610")
    assert stack.outbound_to(ONCALL[0]) == []


# --- email ------------------------------------------------------------------------------------


def test_the_team_is_emailed_over_smtp_with_a_login(stack, engine, session, mail, caplog):
    server = mail(login=True)
    settings = alerting(stack.settings, server)
    sam = enroll_participant(engine, settings, SAM)
    alert = text_crisis(engine, settings, SAM, SAM_WORDS)
    with caplog.at_level(logging.DEBUG):
        tell(engine, settings, alert)
    [email] = server.received
    assert email.login == "tend-alerts" and email.recipients == [TEAM]
    assert email.message["Subject"] == f"[Tend] Crisis alert {alert.id} (suicide)"
    assert email.message["From"] == "Tend <tend@clinic.example.org>"
    assert f"crisis alert {alert.id} (suicide) for participant {sam}." in email.text
    assert f"{settings.public_base_url}/console/alerts/{alert.id}" in email.text
    assert f"reply ACK {alert.id}" in email.text
    assert SAM[-7:] not in email.text and "die" not in email.text.replace("paused", "")
    assert SMTP_PASSWORD not in caplog.text
    assert {(n.channel, n.target, n.status) for n in notifications(session)} == {
        ("sms", ONCALL[0], "sent"), ("email", TEAM, "sent")}


def test_email_goes_over_starttls_when_the_server_offers_it(
    stack, engine, mail, tmp_path, monkeypatch
):
    server = mail(login=True, tls=tls_context(tmp_path, monkeypatch))
    settings = alerting(stack.settings, server)
    tell(engine, settings, text_crisis(engine, settings, SAM, SAM_WORDS))
    [email] = server.received
    assert email.tls and email.login == "tend-alerts"


def test_email_goes_over_tls_from_the_start_with_smtps(stack, engine, mail, tmp_path, monkeypatch):
    server = mail(login=True, tls=tls_context(tmp_path, monkeypatch), implicit=True)
    settings = alerting(stack.settings, server)
    assert settings.smtp_url.startswith("smtps://")
    tell(engine, settings, text_crisis(engine, settings, SAM, SAM_WORDS))
    [email] = server.received
    assert email.login == "tend-alerts"


def _address_of_this_machine() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_password_is_never_sent_unencrypted_to_a_server_elsewhere(stack, engine, session,
                                                                        mail):
    address = _address_of_this_machine()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    server = mail(login=True, host=address)  # offers no STARTTLS
    settings = alerting(stack.settings, server)
    tell(engine, settings, text_crisis(engine, settings, SAM, SAM_WORDS))
    assert server.received == []
    [email] = [n for n in notifications(session) if n.channel == "email"]
    assert email.status == "failed" and "not sent unencrypted" in (email.error or "")


def test_an_address_the_server_refuses_fails_alone(stack, engine, session, mail):
    server = mail()
    server.refused.add("gone@clinic.example.org")
    settings = alerting(stack.settings, server).with_overrides(
        alert_emails=(TEAM, "gone@clinic.example.org"))
    tell(engine, settings, text_crisis(engine, settings, SAM, SAM_WORDS))
    assert [email.recipients for email in server.received] == [[TEAM]]
    emails = {n.target: n for n in notifications(session) if n.channel == "email"}
    assert emails[TEAM].status == "sent"
    gone = emails["gone@clinic.example.org"]
    assert gone.status == "failed" and "550" in (gone.error or "")


# --- webhook ----------------------------------------------------------------------------------


def test_the_webhook_gets_slack_compatible_json(stack, engine, session, hook):
    settings = alerting(stack.settings, hook=hook)
    sam = enroll_participant(engine, settings, SAM)
    alert = text_crisis(engine, settings, SAM, SAM_WORDS)
    tell(engine, settings, alert)
    [post] = hook.posts
    assert post.content_type == "application/json"
    assert post.payload == {"text": (
        f"Tend: crisis alert {alert.id} (suicide) for participant {sam}. Open "
        f"{settings.public_base_url}/console/alerts/{alert.id} and acknowledge it there, or "
        f"reply ACK {alert.id} to the on-call text.")}
    [posted] = [n for n in notifications(session) if n.channel == "webhook"]
    assert (posted.target, posted.status) == ("127.0.0.1", "sent")  # the host, not the path


@pytest.mark.parametrize("status", [500, 404, 302])
def test_a_webhook_that_does_not_answer_2xx_has_failed(stack, engine, session, hook, status):
    hook.status = status
    settings = alerting(stack.settings, hook=hook)
    tell(engine, settings, text_crisis(engine, settings, SAM, SAM_WORDS))
    [posted] = [n for n in notifications(session) if n.channel == "webhook"]
    assert posted.status == "failed" and posted.error == f"the webhook answered HTTP {status}"


# --- every channel at once --------------------------------------------------------------------


def test_a_failing_channel_never_stops_the_others(stack, engine, session, mail, hook, caplog):
    down = mail()
    settings = alerting(stack.settings, down, hook)
    down.stop()  # the mail server is down
    hook.status = 503
    with caplog.at_level(logging.WARNING):
        tell(engine, settings, text_crisis(engine, settings, SAM, SAM_WORDS))
    assert len(stack.outbound_to(ONCALL[0])) == 1  # the on-call text still went out
    outcome = {n.channel: (n.status, n.error) for n in notifications(session)}
    assert outcome["sms"] == ("sent", None)
    assert outcome["email"][0] == "failed" and "ConnectionRefusedError" in outcome["email"][1]
    assert outcome["webhook"] == ("failed", "the webhook answered HTTP 503")
    assert "email to study-team@clinic.example.org failed" in caplog.text


def test_no_password_or_webhook_path_reaches_a_log_or_an_error(
    stack, engine, session, mail, hook, caplog
):
    server = mail(login=True)
    settings = alerting(stack.settings, server, hook).with_overrides(
        smtp_url=server.url(password=SMTP_PASSWORD + "-wrong"))
    hook.stop()  # the webhook's host refuses connections
    with caplog.at_level(logging.DEBUG):
        tell(engine, settings, text_crisis(engine, settings, SAM, SAM_WORDS))
    errors = " ".join(n.error or "" for n in notifications(session))
    assert "SMTPAuthenticationError" in errors and "URLError" in errors
    for secret in (SMTP_PASSWORD, HOOK_SECRET, "hooksecretXYZ"):
        assert secret not in caplog.text and secret not in errors
    assert server.received == []
