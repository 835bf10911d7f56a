"""One participant's whole story for staff: texts each way, decisions, micro interventions and
their outcomes, alerts, notes and consent, newest first, with what is planned next.

Each kind of row is read by one query, bounded by a page size, so a participant with years of
history costs the same few queries as one who joined today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import groupby
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from bot.store.models import (
    Alert,
    Answer,
    ConsentEvent,
    DecisionPoint,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    InterventionRun,
    Participant,
)
from bot.store.queries import PENDING
from bot.store.support import Staff, StaffNote

PAGE = 150  # entries per page of history
UPCOMING = 30  # planned messages shown
DELIVERY_TITLES = {
    "welcome": "Welcome", "event": "Program message", "reminder": "Reminder",
    "narrative": "Narrative", "reply": "Automatic reply", "confirmation": "Confirmation",
    "safety": "Safety reply", "state": "Check-in question", "finished": "Program finished",
    "help": "Help reply", "staff": "Text from staff",
}
STATUS_WORDS = {
    DeliveryStatus.SCHEDULED: "scheduled", DeliveryStatus.QUEUED: "queued to send",
    DeliveryStatus.SENDING: "sending", DeliveryStatus.ACCEPTED: "accepted by the provider",
    DeliveryStatus.SENT: "sent", DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.UNDELIVERED: "not delivered", DeliveryStatus.FAILED: "failed",
    DeliveryStatus.CANCELLED: "cancelled",
}
CONSENT_TITLES = {
    "enrolled": "Enrolled", "opted_out": "Opted out", "opted_in": "Opted back in",
    "paused": "Automated messages paused", "resumed": "Automated messages resumed",
}
ALERT_TITLES = {
    "crisis": "Crisis language", "human": "Asked for a person",
    "undeliverable": "Number unreachable", "content": "Program content problem",
}
OUTCOME_TONES = {"achieved": "ok", "not achieved": "warn", "disengaged": "warn"}


@dataclass
class Entry:
    at: datetime  # UTC
    kind: str  # planned, text-out, narrative, text-in, decision, intervention, alert, note, consent
    title: str
    body: str | None = None  # the text of a message or note; None when there is none
    hidden: bool = False  # there is a text, and this viewer may not read it
    facts: list[tuple[str, str]] = field(default_factory=list)
    tone: str = ""  # ok, warn, danger, muted
    by: str = ""  # the staff member who wrote it


@dataclass
class Timeline:
    upcoming: list[Entry]
    past: list[Entry]
    earlier: datetime | None  # pass as `before` for the page of older entries


class _Page:
    """Collects entries from several queries; knows when one of them had more to give."""

    def __init__(self, bodies: bool) -> None:
        self.bodies = bodies
        self.entries: list[Entry] = []
        self.more = False  # the last query filled its page: it has older rows

    def rows(self, session: Session, query: Any) -> list[Any]:
        found = list(session.exec(query.limit(PAGE)).all())
        self.more = len(found) == PAGE
        return found

    def text(self, value: str | None) -> tuple[str | None, bool]:
        if not value:
            return None, False
        return (value, False) if self.bodies else (None, True)

    def add(self, entry: Entry, body: str | None = None) -> None:
        entry.body, entry.hidden = self.text(body)
        self.entries.append(entry)


def _question(assessment: dict[str, Any] | None) -> str:
    if not assessment:
        return ""
    kind = assessment.get("type", "")
    if kind == "scale":
        return f"scale {assessment.get('min', 1)}–{assessment.get('max', 5)}"
    if kind == "choice":
        return "choice of " + ", ".join(assessment.get("choices", ()))
    return str(kind).replace("_", "/")


def _answer(answer: Answer | None, bodies: bool) -> str:
    if answer is None:
        return "no answer yet"
    if answer.missing:
        return "no reply in time"
    if answer.value is not None and (answer.label is None or not bodies):
        return f"{answer.value:g}"
    return answer.label if bodies and answer.label else "answered"


def _delivery(page: _Page, row: tuple[Delivery, Answer | None, str | None, str | None]) -> Entry:
    delivery, answer, intervention, author = row
    title = f"Text from {author}" if author else DELIVERY_TITLES.get(delivery.kind, delivery.kind)
    facts = [("status", STATUS_WORDS.get(delivery.status, delivery.status))]
    if delivery.error_message and delivery.status in (
        DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.CANCELLED
    ):
        code = f" (error {delivery.error_code})" if delivery.error_code else ""
        facts.append(("why", delivery.error_message + code))
    if delivery.event_key:
        facts.append(("event", delivery.event_key))
    if intervention:
        facts.append(("micro intervention", intervention))
    if question := _question(delivery.assessment):
        facts.append(("asks", question))
        if delivery.status not in PENDING and delivery.status != DeliveryStatus.CANCELLED:
            facts.append(("answer", _answer(answer, page.bodies)))
    tone = {"delivered": "ok", "failed": "danger", "undelivered": "danger",
            "cancelled": "muted"}.get(delivery.status, "")
    at = delivery.sent_at or delivery.final_at or delivery.due_at
    if delivery.status in PENDING:
        at = delivery.due_at
    kind = "narrative" if delivery.kind == "narrative" else "text-out"
    if delivery.status in PENDING:
        kind = "planned"
    return Entry(at=at, kind=kind, title=title, facts=facts, tone=tone, by=author or "")


def _deliveries(session: Session, participant_id: int, before: datetime | None,
                page: _Page) -> None:
    moment = func.coalesce(Delivery.sent_at, Delivery.final_at, Delivery.due_at)
    query = (
        select(Delivery, Answer, InterventionRun.intervention, Staff.email)
        .outerjoin(Answer, col(Answer.delivery_id) == col(Delivery.id))
        .outerjoin(InterventionRun, col(InterventionRun.id) == col(Delivery.run_id))
        .outerjoin(Staff, col(Staff.id) == col(Delivery.staff_id))
        .where(Delivery.participant_id == participant_id, col(Delivery.status).not_in(PENDING))
    )
    if before is not None:
        query = query.where(moment < before)
    for row in page.rows(session, query.order_by(moment.desc(), col(Delivery.id).desc())):
        page.add(_delivery(page, row), row[0].body)


def _upcoming(session: Session, participant_id: int, bodies: bool) -> list[Entry]:
    page = _Page(bodies)
    query = (
        select(Delivery, Answer, InterventionRun.intervention, Staff.email)
        .outerjoin(Answer, col(Answer.delivery_id) == col(Delivery.id))
        .outerjoin(InterventionRun, col(InterventionRun.id) == col(Delivery.run_id))
        .outerjoin(Staff, col(Staff.id) == col(Delivery.staff_id))
        .where(Delivery.participant_id == participant_id, col(Delivery.status).in_(PENDING))
        .order_by(col(Delivery.due_at), col(Delivery.id))
    )
    for row in session.exec(query.limit(UPCOMING)).all():
        page.add(_delivery(page, row), row[0].body)
    return page.entries


def _texts_in(session: Session, participant_id: int, before: datetime | None,
              page: _Page) -> None:
    query = (
        select(InboundMessage, Answer, Delivery.event_key)
        .outerjoin(Answer, col(Answer.inbound_message_id) == col(InboundMessage.id))
        .outerjoin(Delivery, col(Delivery.id) == col(Answer.delivery_id))
        .where(InboundMessage.participant_id == participant_id)
    )
    if before is not None:
        query = query.where(col(InboundMessage.received_at) < before)
    order = (col(InboundMessage.received_at).desc(), col(InboundMessage.id).desc())
    for message, answer, event_key in page.rows(session, query.order_by(*order)):
        facts = [("read as", message.intent or "text")]
        if answer is not None:
            facts.append(("answers", event_key or "a question"))
            facts.append(("value", _answer(answer, page.bodies)))
        tone = "danger" if message.intent == "crisis" else ""
        title = "Reply" if answer is not None else "Text"
        entry = Entry(at=message.received_at, kind="text-in", title=title, facts=facts, tone=tone)
        page.add(entry, message.body)


def _decisions(session: Session, participant_id: int, before: datetime | None,
               page: _Page) -> None:
    query = select(DecisionPoint).where(DecisionPoint.participant_id == participant_id)
    if before is not None:
        query = query.where(col(DecisionPoint.decided_at) < before)
    order = (col(DecisionPoint.decided_at).desc(), col(DecisionPoint.id).desc())
    for point in page.rows(session, query.order_by(*order)):
        facts = [("available", "yes" if point.available else "no"), ("choice", point.choice)]
        if point.probability is not None:
            facts.append(("probability", f"{point.probability:.0%}"))
        if point.outcome_status:
            shown = f"{point.outcome:g}" if point.outcome is not None else point.outcome_status
            facts.append(("proximal outcome", shown))
        if point.program_version:
            facts.append(("program version", point.program_version[:12]))
        page.add(Entry(at=point.decided_at, kind="decision", title=point.decision,
                       facts=facts, tone="muted" if point.choice == "skip" else ""))


def _runs(session: Session, participant_id: int, before: datetime | None, page: _Page) -> None:
    query = select(InterventionRun).where(InterventionRun.participant_id == participant_id)
    if before is not None:
        query = query.where(col(InterventionRun.started_at) < before)
    order = (col(InterventionRun.started_at).desc(), col(InterventionRun.id).desc())
    for run in page.rows(session, query.order_by(*order)):
        facts = [("level", run.level)] if run.level else []
        if run.reason:
            facts.append(("why", run.reason))
        page.add(Entry(at=run.started_at, kind="intervention",
                       title=f"{run.intervention} started", facts=facts))
        if run.ended_at is not None and (before is None or run.ended_at < before):
            ended = [("outcome", run.outcome or "none recorded")]
            if run.end_reason:
                ended.append(("how", run.end_reason))
            page.add(Entry(at=run.ended_at, kind="intervention",
                           title=f"{run.intervention} ended", facts=ended,
                           tone=OUTCOME_TONES.get(run.outcome or "", "")))


def _alerts(session: Session, participant_id: int, before: datetime | None,
            page: _Page) -> None:
    query = select(Alert).where(Alert.participant_id == participant_id)
    if before is not None:
        query = query.where(col(Alert.created_at) < before)
    for alert in page.rows(session, query.order_by(col(Alert.created_at).desc())):
        state = ("resolved" if alert.resolved_at else
                 f"acknowledged by {alert.acknowledged_by}" if alert.acknowledged_at else "open")
        facts = [("state", state)]
        if alert.category:
            facts.insert(0, ("category", alert.category))
        tone = "danger" if alert.kind == "crisis" else "warn"
        title = ALERT_TITLES.get(alert.kind, alert.kind)
        page.add(Entry(at=alert.created_at, kind="alert", title=title,
                       facts=facts, tone=tone), alert.detail)


def _notes(session: Session, participant_id: int, before: datetime | None,
           page: _Page) -> None:
    query = (
        select(StaffNote, Staff.email, Staff.name)
        .join(Staff, col(Staff.id) == col(StaffNote.staff_id))
        .where(StaffNote.participant_id == participant_id)
    )
    if before is not None:
        query = query.where(col(StaffNote.created_at) < before)
    order = (col(StaffNote.created_at).desc(), col(StaffNote.id).desc())
    for note, email, name in page.rows(session, query.order_by(*order)):
        page.add(Entry(at=note.created_at, kind="note", title=f"by {name or email}",
                       by=name or email),
                 note.body)


def _consent(session: Session, participant_id: int, before: datetime | None,
             page: _Page) -> None:
    query = select(ConsentEvent).where(ConsentEvent.participant_id == participant_id)
    if before is not None:
        query = query.where(col(ConsentEvent.at) < before)
    order = (col(ConsentEvent.at).desc(), col(ConsentEvent.id).desc())
    for event in page.rows(session, query.order_by(*order)):
        # `via` may be the participant's own words ("please stop texting me"): a text.
        facts = [("how", event.via)] if event.via and page.bodies else []
        tone = "warn" if event.kind in ("opted_out", "paused") else ""
        page.add(Entry(at=event.at, kind="consent",
                       title=CONSENT_TITLES.get(event.kind, event.kind), facts=facts, tone=tone))


def timeline(
    session: Session, *, participant: Participant, bodies: bool, before: datetime | None = None
) -> Timeline:
    """The newest page of `participant`'s history (older than `before`, if given) and, on the
    first page, the messages planned next. Without `bodies`, no message or note text is read
    out: entries say a text exists but not what it says."""
    pid = participant.id or 0
    page = _Page(bodies)
    floor: datetime | None = None  # older than this, a query that filled its page has more
    for part in (_deliveries, _texts_in, _decisions, _runs, _alerts, _notes, _consent):
        start, page.more = len(page.entries), False
        part(session, pid, before, page)
        if page.more:
            oldest = min(e.at for e in page.entries[start:])
            floor = oldest if floor is None else max(floor, oldest)
    entries = sorted(page.entries, key=lambda e: e.at, reverse=True)
    if floor is not None:
        entries = [e for e in entries if e.at >= floor]
    earlier = None
    if len(entries) > PAGE or floor is not None:
        cut = min(PAGE, len(entries)) - 1
        oldest = entries[cut].at
        # Keep every entry at the cut's moment, so the next page (strictly older) loses none.
        while cut + 1 < len(entries) and entries[cut + 1].at == oldest:
            cut += 1
        entries, earlier = entries[: cut + 1], oldest
    upcoming = _upcoming(session, pid, bodies) if before is None else []
    return Timeline(upcoming=upcoming, past=entries, earlier=earlier)


def by_local_day(entries: list[Entry], tz: ZoneInfo) -> list[tuple[date, list[Entry]]]:
    """Entries grouped by the participant's local day, in the order given."""
    return [
        (day, list(group))
        for day, group in groupby(entries, key=lambda e: e.at.astimezone(tz).date())
    ]
