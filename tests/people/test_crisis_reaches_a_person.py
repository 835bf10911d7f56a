"""A crisis text reaches a person, end to end: a signed webhook from the sandbox, the dispatcher's
tick, the on-call text at the sandbox, an email at a real SMTP server and a post at a real chat
webhook; escalation to the next on-call number when nobody acknowledges; ACK by text stops it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import Session, col, select

from bot.delivery.queues import delivery_queue
from bot.store.models import Alert
from tests.people.channels import (
    ONCALL,
    PLAIN_LOGIN,
    TEAM,
    HookServer,
    MailServer,
    alerting,
    enroll_participant,
    hook_server,  # noqa: F401  (the hook fixture)
    mail_servers,  # noqa: F401  (the mail fixture)
)
from worker import dispatcher

pytestmark = [
    PLAIN_LOGIN,
]

# Sam is enrolled in daily check-ins; the study's on-call rota and team inbox are set.
SAM = "+14155550142"


@pytest.fixture
def team_mail(mail) -> MailServer:
    return mail()


@pytest.fixture
def settings(settings, team_mail: MailServer, hook: HookServer):
    """The test settings with every channel set: the web app and the sandbox get them too."""
    return alerting(settings, team_mail, hook)


def open_alert(session: Session) -> Alert:
    session.expire_all()
    return session.exec(select(Alert).order_by(col(Alert.id).desc())).one()


def test_a_crisis_text_reaches_a_person_and_escalates_until_someone_acks(
    stack, engine, session, redis_conn, team_mail, hook
):
    queue = delivery_queue(stack.settings, redis_conn)

    def tick() -> None:
        dispatcher.tick(engine=engine, queue=queue, settings=stack.settings)

    enroll_participant(engine, stack.settings, SAM)
    with freeze_time("2026-06-05 16:00:00", tick=True) as clock:
        answer = stack.text(SAM, "i cant do this anymore i want to die").json()
        [reply] = [r["body"] for r in answer["replies"]]
        assert "988" in reply and "a person will reach out" in reply

        tick()  # one dispatcher tick
        [page] = [m.body for m in stack.outbound_to(ONCALL[0])]
        alert = open_alert(session)
        assert page.startswith(f"Tend: crisis alert {alert.id} (suicide) for participant")
        assert f"reply ACK {alert.id}" in page and SAM[-7:] not in page
        [email] = team_mail.received
        assert email.recipients == [TEAM] and f"/console/alerts/{alert.id}" in email.text
        [post] = hook.posts
        assert f"crisis alert {alert.id}" in post.payload["text"]

        clock.tick(timedelta(minutes=stack.settings.escalate_after_minutes, seconds=1))
        tick()  # nobody acknowledged: the next on-call number
        [escalated] = [m.body for m in stack.outbound_to(ONCALL[1])]
        assert "still not acknowledged after 10 min" in escalated
        assert len(team_mail.received) == 2 and len(hook.posts) == 2

        answer = stack.text(ONCALL[1], "ACK").json()
        [thanks] = [r["body"] for r in answer["replies"]]
        assert thanks.startswith(f"Thanks: alert {alert.id} is yours")

        clock.tick(timedelta(minutes=3 * stack.settings.escalate_after_minutes))
        tick()
        assert stack.outbound_to(ONCALL[2]) == []
        assert len(stack.outbound_to(ONCALL[0])) == 1 and len(team_mail.received) == 2
    acknowledged = open_alert(session)
    assert acknowledged.acknowledged_by == "sms:+•••••••0102"
    assert acknowledged.next_escalation_at is None
