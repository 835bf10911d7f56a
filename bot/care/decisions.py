"""Decisions at send time: a delivery about to go out meets the program's rules.

Taken in the worker, with the participant's latest answers: a `when` rule, a branch to an
alternative event, a micro-randomized draw, re-engagement with back-off, or ending the
intervention early. Every decision point is logged (`DecisionPoint`)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from bot.care.outcomes import close_run, record_missing
from bot.care.programs import EventSpec, Intervention, Program
from bot.care.rules import RuleError
from bot.care.state import UNSENT, rule_context
from bot.clock import as_utc
from bot.store.models import (
    Answer,
    DecisionPoint,
    Delivery,
    DeliveryStatus,
    InterventionRun,
    Participant,
)

log = logging.getLogger(__name__)


NARRATIVE_FIRST = timedelta(minutes=2)  # an intervention's first event waits for its narrative


@dataclass
class Decision:
    action: str  # send, cancel, defer
    reason: str = ""
    until: datetime | None = None
    text: str | None = None  # send this text instead of rendering a template
    ended_run: bool = False  # the intervention ended: the hub should look at the participant


SEND = Decision("send")


def _draw(program: Program, participant: Participant, decision: str) -> float:
    """The participant's reproducible draw in [0, 1) for one decision point."""
    return random.Random(f"{program.seed}:{participant.id}:{decision}").random()


def _log_decision(
    session: Session, *, delivery: Delivery, program: Program, decision: str, available: bool,
    probability: float | None, choice: str, moment: datetime,
) -> None:
    session.add(
        DecisionPoint(
            participant_id=delivery.participant_id,
            run_id=delivery.run_id,
            delivery_id=delivery.id or 0,
            decision=decision[:120],
            available=available,
            probability=probability,
            choice=choice[:80],
            program_version=program.version,
            decided_at=moment,
        )
    )


def _re_engagements_this_week(
    session: Session, participant_id: int, moment: datetime
) -> int:
    return session.exec(
        select(func.count(col(DecisionPoint.id))).where(
            DecisionPoint.participant_id == participant_id,
            col(DecisionPoint.choice).startswith("re-engage:"),
            DecisionPoint.decided_at >= moment - timedelta(days=7),
        )
    ).one()


def _use(delivery: Delivery, event: EventSpec) -> None:
    """Send `event` (an alternative) in place of the planned one."""
    delivery.template = event.template
    delivery.assessment = event.assessment.as_dict() if event.assessment else None
    delivery.context = {**(delivery.context or {}), "sent_event": event.key}


def decide(
    *,
    session: Session,
    participant: Participant,
    program: Program,
    delivery: Delivery,
    moment: datetime,
) -> Decision:
    """Apply the program's rules to a delivery about to be sent (its row is locked)."""
    if delivery.kind == "reminder":
        return _decide_reminder(session, delivery)
    run, narrative_pending = _run_of(session, delivery)
    if run is not None and run.ended_at is not None:
        return Decision("cancel", f"its intervention ended ({run.end_reason})")
    if delivery.kind == "narrative" or delivery.kind != "event" or not delivery.event_key:
        return SEND
    intervention, event = program.find_event(delivery.event_key)
    if event is None:
        return Decision("cancel", f"event {delivery.event_key} is not in program version "
                                  f"{program.version}")
    if run is not None and narrative_pending:
        return Decision("defer", "its narrative goes first", until=moment + NARRATIVE_FIRST)
    needs_rules = event.is_decision_point or (
        intervention is not None
        and (intervention.end_early is not None
             or (intervention.re_engage is not None and event.assessment is not None))
    )
    if not needs_rules:
        return SEND
    point = _Point(session=session, participant=participant, program=program, delivery=delivery,
                   run=run, intervention=intervention, event=event, moment=moment)
    return point.ends_early() or point.re_engages() or point.chooses()


@dataclass
class _Point:
    """One decision point: the rule state read once, then each way the program may decide."""

    session: Session
    participant: Participant
    program: Program
    delivery: Delivery
    run: InterventionRun | None
    intervention: Intervention | None
    event: EventSpec
    moment: datetime

    def __post_init__(self) -> None:
        context = self.delivery.context or {}
        record_missing(session=self.session, participant_id=self.participant.id or 0,
                       moment=self.moment)
        self.state = rule_context(
            session=self.session, participant=self.participant, program=self.program,
            run=self.run, moment=self.moment,
            occurrence=int(context.get("occurrence", 0)), times=int(context.get("times", 0)),
        )
        self.key = f"{self.delivery.event_key}@{self.delivery.run_id or 0}"

    def holds(self, rule: Any) -> bool:
        try:
            return bool(rule.holds(self.state))
        except RuleError as exc:  # a typo never sends a wrong message: the rule does not hold
            log.error("participant %s: %s", self.participant.id, exc)
            return False

    def log(self, *, available: bool, probability: float | None, choice: str) -> None:
        _log_decision(self.session, delivery=self.delivery, program=self.program,
                      decision=self.key, available=available, probability=probability,
                      choice=choice, moment=self.moment)

    def ends_early(self) -> Decision | None:
        intervention, run = self.intervention, self.run
        if (
            intervention is None or run is None or intervention.end_early is None
            or self.state["asked"] <= 0  # judged on its own questions, never before the first
            or not self.holds(intervention.end_early)
        ):
            return None
        close_run(session=self.session, participant=self.participant, program=self.program,
                  run=run, moment=self.moment, end_reason="ended early")
        return Decision("cancel", "its intervention ended early", ended_run=True)

    def re_engages(self) -> Decision | None:
        intervention, unanswered = self.intervention, self.state["unanswered_in_a_row"]
        if (
            intervention is None or intervention.re_engage is None
            or self.event.assessment is None
            or unanswered < intervention.re_engage.after_unanswered
        ):
            return None
        lighter = intervention.event(intervention.re_engage.event)
        if (
            lighter is not None
            and _re_engagements_this_week(self.session, self.participant.id or 0, self.moment)
            < intervention.re_engage.per_week
        ):
            _use(self.delivery, lighter)
            self.log(available=True, probability=None, choice=f"re-engage:{lighter.key}")
            return SEND
        self.log(available=False, probability=None, choice="skip")
        return Decision("cancel", f"backing off after {unanswered} unanswered questions")

    def find(self, key: str | None) -> EventSpec | None:
        if self.intervention is not None:
            return self.intervention.event(key) if key else None
        return next((e for e in self.program.events if e.key == key), None)

    def chooses(self) -> Decision:
        event, chosen = self.event, self.event
        available = True
        if event.when is not None and not self.holds(event.when):
            chosen = self.find(event.otherwise)
            available = chosen is not None
        probability = None
        if available and event.randomize:
            draw, total = _draw(self.program, self.participant, self.key), 0.0
            choice = event.randomize[-1][0]
            for option, p in event.randomize:
                total += p
                if draw < total:
                    choice = option
                    break
            probability = dict(event.randomize)[choice]
            chosen = None if choice == "skip" else self.find(choice)
        self.log(available=available, probability=probability,
                 choice=chosen.key if chosen is not None else "skip")
        if chosen is None:
            why = "randomized to skip" if available else "its rule did not hold"
            return Decision("cancel", f"not sent: {why}")
        if chosen is not event:
            _use(self.delivery, chosen)
        return SEND


_RUN = bindparam("run")
# The run, and whether its narrative is still to be sent.
_RUN_AND_NARRATIVE = select(
    InterventionRun,
    select(Delivery.id).where(
        col(Delivery.run_id) == _RUN, Delivery.kind == "narrative",
        col(Delivery.status).in_(UNSENT),
    ).exists(),
).where(col(InterventionRun.id) == _RUN)
# A reminder's prompt, with its answer's id if it has one.
_PROMPT_AND_ANSWER = (
    select(Delivery, Answer.id)
    .outerjoin(Answer, col(Answer.delivery_id) == col(Delivery.id))
    .where(col(Delivery.id) == bindparam("prompt"))
)


def _run_of(session: Session, delivery: Delivery) -> tuple[InterventionRun | None, bool]:
    """The delivery's run, and whether the run's narrative is still to be sent: one query."""
    if not delivery.run_id:
        return None, False
    found = session.exec(_RUN_AND_NARRATIVE, params={"run": delivery.run_id}).first()
    return (found[0], bool(found[1])) if found is not None else (None, False)


def _decide_reminder(session: Session, reminder: Delivery) -> Decision:
    # The prompt, and whether it has an answer, in one query.
    found = session.exec(
        _PROMPT_AND_ANSWER, params={"prompt": int((reminder.context or {}).get("reminds") or 0)}
    ).first()
    prompt, answered = found if found is not None else (None, None)
    text = str((reminder.context or {}).get("text") or "")
    if prompt is None or prompt.status == DeliveryStatus.CANCELLED or not text:
        return Decision("cancel", "its question was not sent")
    if prompt.sent_at is None:
        if prompt.status in UNSENT:
            after = float((reminder.context or {}).get("after_hours") or 1)
            return Decision("defer", "its question is not sent yet",
                            until=max(prompt.due_at, reminder.due_at) + timedelta(hours=after))
        return Decision("cancel", "its question was not delivered")
    if answered is not None:
        return Decision("cancel", "already answered")
    after = timedelta(hours=float((reminder.context or {}).get("after_hours") or 1))
    if as_utc(prompt.sent_at) + after > as_utc(reminder.due_at):
        return Decision("defer", "its question went out late",
                        until=as_utc(prompt.sent_at) + after)
    return Decision("send", text=text)

