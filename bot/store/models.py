"""The tables: SQL is the source of truth for participants, schedules and history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel

from bot.clock import as_utc, now


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on SQLite (which drops zones) as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


def _when(*, index: bool = False, nullable: bool = True) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, index=index)
    return Field(default_factory=now, sa_type=UTCDateTime, index=index)


class DeliveryStatus(StrEnum):
    """Where an outbound message is; provider statuses only ever move it forward."""

    SCHEDULED = "scheduled"  # waiting in SQL for its due time
    QUEUED = "queued"  # claimed by a dispatcher and put on the RQ queue
    SENDING = "sending"  # a worker is calling the provider (body stored first)
    ACCEPTED = "accepted"  # the provider accepted it and gave us a sid
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELLED = "cancelled"  # never sent: opt-out, pause, or the event no longer applies


# Rank of each status; a callback that would move a delivery backwards is ignored.
STATUS_RANK = {
    DeliveryStatus.SCHEDULED: 0,
    DeliveryStatus.QUEUED: 1,
    DeliveryStatus.SENDING: 2,
    DeliveryStatus.ACCEPTED: 3,
    DeliveryStatus.SENT: 4,
    DeliveryStatus.DELIVERED: 5,
    DeliveryStatus.UNDELIVERED: 5,
    DeliveryStatus.FAILED: 5,
    DeliveryStatus.CANCELLED: 5,
}
FINAL_STATUSES = frozenset(s for s, rank in STATUS_RANK.items() if rank == 5)


class Participant(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=20, unique=True, index=True)  # E.164
    program: str = Field(max_length=80, index=True)
    timezone: str = Field(max_length=64)
    enrolled_at: datetime = _when(nullable=False)
    enrolled_via: str = Field(default="keyword", max_length=20)  # keyword, cli, import
    opted_out_at: datetime | None = _when()
    paused_at: datetime | None = _when()  # crisis pause: no automated content
    undeliverable_at: datetime | None = _when()
    undeliverable_reason: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # When the hub should next look at this participant (a micro intervention ends, the
    # periodic evaluation, a CHECKIN); the dispatcher claims due ones.
    next_evaluation_at: datetime | None = _when(index=True)
    evaluation_reason: str | None = Field(default=None, max_length=20)

    @property
    def receives_automated_content(self) -> bool:
        return self.receives_a_person_s_text and self.paused_at is None

    @property
    def receives_a_person_s_text(self) -> bool:
        """A text staff write: a pause holds automated messages only; STOP holds everything."""
        return self.opted_out_at is None and self.undeliverable_at is None


class InboundMessage(SQLModel, table=True):
    """One row per provider MessageSid: a retried webhook is recognised and ignored."""

    __tablename__ = "inbound_message"

    id: int | None = Field(default=None, primary_key=True)
    message_sid: str = Field(max_length=64, unique=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    from_phone: str = Field(max_length=32, index=True)
    to_phone: str = Field(default="", max_length=32)
    body: str = Field(default="", sa_type=sa.Text)
    intent: str = Field(default="", max_length=32)
    reply: str | None = Field(default=None, sa_type=sa.Text)
    received_at: datetime = _when(nullable=False, index=True)


class Delivery(SQLModel, table=True):
    """An outbound message: the outbox row is the work item and the history record."""

    __table_args__ = (
        # The outbox claim: due rows oldest first, the id breaking ties (`outbox.claim_due`).
        sa.Index("ix_delivery_status_due", "status", "due_at", "id"),
        # A participant's history by recency: the latest prompts and the questions still open
        # to a reply, read backwards from now rather than through their whole history.
        sa.Index("ix_delivery_participant_sent", "participant_id", "sent_at"),
        # A participant's deliveries of one kind: their state questions, the closing message.
        sa.Index("ix_delivery_participant_kind", "participant_id", "kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: str = Field(max_length=32)  # welcome, event, reply, confirmation, safety, ...
    event_key: str | None = Field(default=None, max_length=80)
    run_id: int | None = Field(default=None, foreign_key="intervention_run.id", index=True)
    template: str | None = Field(default=None, max_length=200)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    assessment: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True))
    )
    due_at: datetime = _when(nullable=False)
    status: str = Field(default=DeliveryStatus.SCHEDULED, max_length=16)
    via: str = Field(default="api", max_length=8)  # api (outbox) or twiml (webhook reply)
    attempts: int = 0
    claimed_at: datetime | None = _when()  # when a dispatcher put it on the queue
    send_started_at: datetime | None = _when()  # when a worker began the provider call
    retry_of: int | None = Field(default=None, foreign_key="delivery.id")
    claim_token: str | None = Field(default=None, max_length=40)
    claimed_by: str | None = Field(default=None, max_length=32)  # the worker sending it
    provider_sid: str | None = Field(default=None, max_length=64, unique=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")  # a text a person wrote
    body: str | None = Field(default=None, sa_type=sa.Text)
    segments: int | None = None
    encoding: str | None = Field(default=None, max_length=8)  # GSM-7 or UCS-2
    error_code: int | None = None
    error_message: str | None = Field(default=None, max_length=500)
    program_version: str | None = Field(default=None, max_length=64)
    created_at: datetime = _when(nullable=False)
    sent_at: datetime | None = _when()
    final_at: datetime | None = _when()


class DeliveryEvent(SQLModel, table=True):
    """Each status a delivery reached, once: the engagement record."""

    __tablename__ = "delivery_event"
    __table_args__ = (sa.UniqueConstraint("delivery_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    status: str = Field(max_length=16)
    error_code: int | None = None
    at: datetime = _when(nullable=False)


class Answer(SQLModel, table=True):
    """A reply to a proximal assessment, credited to the prompt that asked it: one question,
    one answer (a real reply or a recorded `missing`), enforced by the database."""

    # A participant's answers since a moment (a decision's outcome window), not all of them.
    __table_args__ = (sa.Index("ix_answer_participant_answered", "participant_id", "answered_at"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    delivery_id: int = Field(foreign_key="delivery.id", unique=True)
    inbound_message_id: int | None = Field(
        default=None, foreign_key="inbound_message.id", unique=True
    )
    raw: str = Field(default="", sa_type=sa.Text)
    missing: bool = False  # no reply by the question's timeout
    value: float | None = None  # numbers and scales; yes is 1 and no is 0; a choice's number
    label: str | None = Field(default=None, sa_type=sa.Text)  # a choice's option, free text
    answered_at: datetime = _when(nullable=False)


class InterventionRun(SQLModel, table=True):
    """One micro intervention given to one participant: when, why, and how it went."""

    __tablename__ = "intervention_run"
    # The participant's open run (ended_at IS NULL) found at once, not among all their runs.
    __table_args__ = (
        sa.Index("ix_intervention_run_participant_ended", "participant_id", "ended_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    intervention: str = Field(max_length=80)
    level: str = Field(default="", max_length=80)
    reason: str = Field(default="", max_length=300)  # why the hub chose it
    started_at: datetime = _when(nullable=False)
    ends_at: datetime | None = _when()  # when its last question closes, as planned
    ended_at: datetime | None = _when()
    outcome: str | None = Field(default=None, max_length=20)  # achieved, not achieved, disengaged
    end_reason: str | None = Field(default=None, max_length=40)  # completed, ended early, ...
    program_version: str | None = Field(default=None, max_length=64)


class DecisionPoint(SQLModel, table=True):
    """A decision rule applied to one event of one participant: the micro-randomized trial log."""

    __tablename__ = "decision_point"
    # The decision points still waiting for their outcome (outcome_status IS NULL), not all.
    __table_args__ = (
        sa.Index("ix_decision_point_participant_open", "participant_id", "outcome_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    run_id: int | None = Field(default=None, foreign_key="intervention_run.id")
    delivery_id: int = Field(foreign_key="delivery.id", unique=True)
    decision: str = Field(max_length=120)  # intervention/event#occurrence
    available: bool = True
    probability: float | None = None  # of the option chosen; None when nothing was drawn
    choice: str = Field(max_length=80)  # the event sent, or "skip"
    program_version: str | None = Field(default=None, max_length=64)
    decided_at: datetime = _when(nullable=False)
    outcome: float | None = None  # the proximal outcome: the answer to what was sent
    outcome_status: str | None = Field(default=None, max_length=12)  # answered, missing
    outcome_at: datetime | None = _when()


class Alert(SQLModel, table=True):
    """Something a coordinator must look at: crisis language, a request for a human."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    kind: str = Field(max_length=32)  # crisis, human, undeliverable, content
    category: str | None = Field(default=None, max_length=32)  # crisis: suicide, self-harm, ...
    detail: str = Field(default="", sa_type=sa.Text)
    inbound_message_id: int | None = Field(default=None, foreign_key="inbound_message.id")
    created_at: datetime = _when(nullable=False)
    resolved_at: datetime | None = _when()
    acknowledged_at: datetime | None = _when()  # a person said they have it
    acknowledged_by: str | None = Field(default=None, max_length=254)
    escalation_round: int = 0  # notifications sent so far, round by round
    next_escalation_at: datetime | None = _when(index=True)  # unacknowledged until then: escalate


class UnmatchedStatus(SQLModel, table=True):
    """A status callback that arrived before its sid was recorded; applied once it is."""

    __tablename__ = "unmatched_status"

    id: int | None = Field(default=None, primary_key=True)
    message_sid: str = Field(max_length=64, index=True)
    status: str = Field(max_length=16)
    error_code: int | None = None
    received_at: datetime = _when(nullable=False)


class ConsentEvent(SQLModel, table=True):
    """The append-only consent record: every enrollment, opt-out, opt-in, pause and resume."""

    __tablename__ = "consent_event"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: str = Field(max_length=16)  # enrolled, opted_out, opted_in, paused, resumed
    via: str = Field(default="", max_length=80)  # the keyword or words, the command, ...
    at: datetime = _when(nullable=False)


class WorkerHeartbeat(SQLModel, table=True):
    """A sending worker's sign of life: rows it left in sending are reconciled as soon as it
    stops beating, not after the whole claim timeout."""

    __tablename__ = "worker_heartbeat"

    worker_id: str = Field(primary_key=True, max_length=32)
    started_at: datetime = _when(nullable=False)
    beat_at: datetime = _when(nullable=False, index=True)


class AlertMessage(SQLModel, table=True):
    """A text kept with an open alert: those that came after crisis language, until resolved."""

    __tablename__ = "alert_message"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    inbound_message_id: int = Field(foreign_key="inbound_message.id", unique=True)


# The tables of human support live beside these; importing them here registers them.
from bot.store import support  # noqa: E402, F401
