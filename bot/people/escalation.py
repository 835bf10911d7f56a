"""Escalation until a person acknowledges: a crisis alert notifies every channel at once, then
texts the next on-call number every ESCALATE_AFTER_MINUTES, until someone acknowledges it (in
the console, or by replying ACK to the on-call text) or resolves it.

Safe with several dispatchers: an alert's round is claimed in SQL (SKIP LOCKED on PostgreSQL,
a conditional update everywhere) before anyone is told, so each round goes out once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import case, literal, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.people import audit, notifications
from bot.people.notifications import SmsSender
from bot.people.oncall import channels, masked, on_call, staff_zone
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import Alert, UTCDateTime
from bot.store.support import Notification

log = logging.getLogger(__name__)

# A claimed round not finished in this time (the dispatcher died mid-send) is claimed again.
LEASE = timedelta(minutes=2)
# A round that reached nobody (every channel failed) escalates this soon instead.
AFTER_NOBODY = timedelta(minutes=1)
BATCH = 20  # alerts one tick notifies at most
_ACK = re.compile(r"ack(?:nowledged?)?\s*#?\s*(\d{1,9})?\s*[.!]*", re.IGNORECASE)


def schedule_first_notification(alert: Alert, moment: datetime) -> None:
    """A new crisis alert: the dispatcher's next tick (within a second) tells a person."""
    alert.next_escalation_at = moment


def _due(moment: datetime) -> list:
    return [
        col(Alert.kind) == "crisis", col(Alert.next_escalation_at) <= moment,
        col(Alert.acknowledged_at).is_(None), col(Alert.resolved_at).is_(None),
    ]


def _claim(engine: Engine, moment: datetime) -> list[tuple[int, int]]:
    """(alert id, round) of due alerts, each leased to this caller alone."""
    with engine.begin() as connection:
        chosen = (
            select(Alert.id).where(*_due(moment)).order_by(col(Alert.next_escalation_at))
            .limit(BATCH)
        )
        if connection.dialect.name == "postgresql":
            chosen = chosen.with_for_update(skip_locked=True)
        ids = list(connection.execute(chosen).scalars())
        if not ids:
            return []
        # The conditions again: without row locks (SQLite) another dispatcher may have won.
        claimed = connection.execute(
            update(Alert).where(col(Alert.id).in_(ids), *_due(moment))
            .values(next_escalation_at=moment + LEASE)
            .returning(col(Alert.id), col(Alert.escalation_round))
        )
        return [(alert_id, round_) for alert_id, round_ in claimed]


def notify_due(
    engine: Engine, settings: Settings, moment: datetime, *, sms: Callable[[Settings], SmsSender]
) -> int:
    """Notify every crisis alert whose round is due; returns how many alerts were notified.

    Round 0 goes to every channel (SMS to the first on-call number, email, webhook); each
    later round texts the next number in the rota and repeats email and webhook. `sms` makes
    the provider's sender (bot.delivery.provider.SmsSender), only when a text is due.
    """
    if not channels(settings):
        return 0  # nobody to tell: alerts wait, and are told once a channel is set
    claimed = _claim(engine, moment)
    if not claimed:
        return 0
    sender = sms(settings) if settings.oncall_phones else None
    for alert_id, round_ in claimed:
        _notify(engine, settings, sender, alert_id, round_, moment)
    return len(claimed)


def _notify(
    engine: Engine, settings: Settings, sender: SmsSender | None, alert_id: int, round_: int,
    moment: datetime,
) -> None:
    with session_scope(engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return
        news = notifications.news_of(
            session=session, settings=settings, alert=alert, round_=round_, moment=moment
        )
    attempts = notifications.notify(
        settings, news, sms_to=on_call(settings, round_), sender=sender
    )
    reached = any(attempt.sent for attempt in attempts)
    if not reached:
        log.error("alert %s round %s reached nobody; escalating again in %s",
                  alert_id, round_, AFTER_NOBODY)
    wait = timedelta(minutes=settings.escalate_after_minutes) if reached else AFTER_NOBODY
    with session_scope(engine) as session:
        for attempt in attempts:
            session.add(Notification(
                alert_id=alert_id, channel=attempt.channel, target=attempt.target[:254],
                round=round_, created_at=moment, sent_at=moment if attempt.sent else None,
                status="sent" if attempt.sent else "failed", provider_sid=attempt.provider_sid,
                error=attempt.error[:500] if attempt.error else None,
            ))
        still_open = col(Alert.acknowledged_at).is_(None) & col(Alert.resolved_at).is_(None)
        session.exec(
            update(Alert).where(col(Alert.id) == alert_id, col(Alert.escalation_round) == round_)
            .values(escalation_round=round_ + 1,
                    next_escalation_at=case(
                        (still_open, literal(moment + wait, UTCDateTime())), else_=None))
        )


def acknowledge(session: Session, alert_id: int, by: str, moment: datetime) -> Alert | None:
    """A person has it: escalation stops for this alert and for every other open crisis alert
    of the same participant. The first acknowledgement stands; None if there is no such alert.
    """
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    same = col(Alert.id) == alert_id
    if alert.participant_id is not None:
        same = same | (
            (col(Alert.participant_id) == alert.participant_id) & (col(Alert.kind) == "crisis")
            & col(Alert.resolved_at).is_(None)
        )
    session.exec(
        update(Alert).where(same, col(Alert.acknowledged_at).is_(None))
        .values(acknowledged_at=moment, acknowledged_by=by[:254], next_escalation_at=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(alert)
    return alert


def _latest_open(session: Session) -> Alert | None:
    return session.exec(
        select(Alert).where(
            col(Alert.kind) == "crisis", col(Alert.acknowledged_at).is_(None),
            col(Alert.resolved_at).is_(None),
        ).order_by(col(Alert.id).desc())
    ).first()


def acknowledgement_by_sms(
    session: Session, settings: Settings, from_phone: str, body: str, moment: datetime
) -> str | None:
    """`ACK 12` (or `ACK`: the latest open crisis alert) from an on-call number: acknowledge,
    and return the reply to send. None for any other text or number: handle it as usual."""
    match = _ACK.fullmatch(body.strip())
    if match is None or from_phone not in settings.oncall_phones:
        return None
    by = f"sms:{masked(from_phone)}"
    if match.group(1):
        alert = session.get(Alert, int(match.group(1)))
        if alert is None:
            return f"There is no alert {match.group(1)}. Reply ACK for the latest open alert."
    else:
        alert = _latest_open(session)
        if alert is None:
            return "There is no open crisis alert to acknowledge."
    link = notifications.alert_link(settings, alert.id or 0)
    if alert.resolved_at is not None:
        return f"Alert {alert.id} is resolved already. {link}"
    if alert.acknowledged_at is not None and alert.acknowledged_by != by:
        at = alert.acknowledged_at.astimezone(staff_zone(settings))
        who = alert.acknowledged_by or "someone"
        if who.startswith("sms:"):  # in plain GSM characters, as the whole text is
            who = f"the on-call phone ending {who[-4:]}"
        return f"Alert {alert.id} was acknowledged already, by {who} at {at:%H:%M}. {link}"
    acknowledge(session, alert.id or 0, by, moment)
    audit.record(session, staff=None, actor=by, action="acknowledge-alert",
                 participant_id=alert.participant_id, detail=f"alert {alert.id}, by SMS")
    log.info("alert %s acknowledged by %s", alert.id, by)
    return f"Thanks: alert {alert.id} is yours and escalation has stopped. {link}"
