"""The clock loop both modes share: enroll, then step a virtual clock until the last day ends.

Each step is one moment: the personas' texts due by then reach the bot, the bot does the work
due (sends, hub evaluations), its status callbacks settle, and each persona reads what reached
its phone. The clock then jumps to the next thing that happens (a delivery falling due, a hub
evaluation, a persona's text). The clock is frozen within a step, so a seed gives the same
journey every run and in either mode.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Protocol

from freezegun import freeze_time
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.care.programs import programs_in
from bot.care.timing import local_moment, zone
from bot.clock import as_utc, now
from bot.participants.enrollment import enroll
from bot.settings import Settings
from bot.store.db import session_scope
from bot.store.models import Delivery, DeliveryEvent, DeliveryStatus, Participant
from bot.store.upkeep import analyze_grown
from bot.tools.personas import Persona, Received, Text, make_persona, persona_names
from bot.tools.simulate.plan import (
    ENROLL_AT,
    MAX_JUMP,
    Outcome,
    Part,
    Plan,
    Simulated,
    SimulationError,
    phone_number,
    real_seconds,
)

REACHED_PHONE = (DeliveryStatus.DELIVERED,)
# Weeks of history are written in minutes: table statistics are refreshed as autovacuum would
# refresh them (`analyze_grown`) this often on the virtual clock, or its plans go stale.
UPKEEP_EVERY = timedelta(hours=6)


class TextFailed(Exception):
    """The bot could not take a persona's text (the message says why)."""


class Stack(Protocol):
    """Where the bot runs: over HTTP and RQ (`full`), or in this process (`inprocess`)."""

    settings: Settings
    engine: Engine
    errors: list[str]  # what went wrong in the bot's work (a failed job), once each
    texting_threads: int  # participants texting the bot at once
    parts: dict[str, Part]  # where the bot's time went, when the stack can tell (in process)

    def text(self, phone: str, body: str) -> list[str]:
        """Text the bot from `phone`; its immediate replies. Raises TextFailed."""
        ...

    def work(self) -> bool:
        """Do the work due now (sends, hub evaluations) and let status callbacks settle;
        False when no message can have reached a phone meanwhile."""
        ...


class Simulation:
    """Runs a plan on a stack: enroll, then step the clock until the last day ends."""

    def __init__(
        self, plan: Plan, stack: Stack, *, progress: Callable[[str], None] | None = None
    ) -> None:
        self.plan = plan
        self.stack = stack
        self.engine = stack.engine
        self.progress = progress
        self.programs = programs_in(stack.settings.narratives_dir)
        self.personas: dict[int, Persona] = {}
        self.phones: dict[int, str] = {}
        self.participants: list[Simulated] = []
        self.pending: list[tuple[datetime, int, int, Text]] = []  # (at, order, participant, text)
        self.order = 0
        self.event_cursor = 0  # the last delivery_event read
        self.delivery_cursor = 0  # the last delivery looked at for questions asked in replies
        self.texts = 0
        self.errors: list[str] = []
        self.texting = (
            ThreadPoolExecutor(max_workers=stack.texting_threads, thread_name_prefix="persona")
            if stack.texting_threads > 1 else None
        )

    def run(self, mode: str) -> Outcome:
        """Simulate the plan; returns what happened (the database has the details)."""
        started = local_moment(self.plan.start, ENROLL_AT, zone(self.plan.timezones[0]))
        end = started + timedelta(days=self.plan.days)
        wall = real_seconds()
        with session_scope(self.engine) as session:
            if session.exec(select(func.count()).select_from(Participant)).one():
                raise SimulationError(
                    "the database already has participants; simulate needs an empty one "
                    "(it would mix its people with real ones)"
                )
        try:
            with freeze_time(started) as clock:
                self._enroll(end)
                steps = self._steps(clock, started, end, wall)
                ended = now()
        finally:
            if self.texting is not None:
                self.texting.shutdown(wait=True)
        return Outcome(
            plan=self.plan, participants=self.participants, started=started, ended=ended,
            wall_seconds=real_seconds() - wall, steps=steps, texts=self.texts,
            errors=[*self.errors, *self.stack.errors], mode=mode, parts=dict(self.stack.parts),
        )

    def _steps(self, clock: object, started: datetime, end: datetime, wall: float) -> int:
        mark = now()
        analyzed = mark
        analyze_grown(self.engine)
        self._step()
        steps, reported = 1, 0
        while mark < end:
            if mark - analyzed >= UPKEEP_EVERY:
                analyzed = mark
                analyze_grown(self.engine)
            target = self._next_moment(mark, end)
            if target > now():
                clock.move_to(target)  # type: ignore[attr-defined]
            mark = now()
            self._step()
            steps += 1
            day = int((mark - started) / timedelta(days=1))
            if self.progress and day >= reported + 7:
                reported = day
                self.progress(
                    f"  day {day} of {self.plan.days}: {self.texts} texts from "
                    f"participants, {real_seconds() - wall:.0f} s"
                )
        return steps

    def _enroll(self, end: datetime) -> None:
        program = self.programs[self.plan.program]
        names = persona_names(self.plan.persona, self.plan.participants)
        zones = self.plan.timezones
        with session_scope(self.engine) as session:
            for index, name in enumerate(names):
                timezone = zones[index % len(zones)]
                participant = enroll(
                    session=session, phone=phone_number(index), program=program,
                    timezone=timezone, via="cli",
                )
                assert participant.id is not None
                persona = make_persona(
                    name, seed=self.plan.seed, index=index, enrolled_at=participant.enrolled_at,
                    timezone=timezone,
                )
                self.personas[participant.id] = persona
                self.phones[participant.id] = participant.phone
                self.participants.append(
                    Simulated(participant.id, participant.phone, name, timezone)
                )
                self._schedule(participant.id, persona.plan(end))

    def _schedule(self, participant_id: int, texts: list[Text]) -> None:
        for text in texts:
            self.order += 1
            heapq.heappush(self.pending, (as_utc(text.at), self.order, participant_id, text))

    def _next_moment(self, mark: datetime, end: datetime) -> datetime:
        """When the next thing happens: a delivery due, a hub evaluation, a persona's text.

        Deliveries already due count (the next step sends them at once); an evaluation counts
        once it is after the last step, so one the hub leaves in the past cannot stall the clock.
        """
        due = select(func.min(Delivery.due_at)).where(Delivery.status == DeliveryStatus.SCHEDULED)
        evaluation = select(func.min(Participant.next_evaluation_at)).where(
            col(Participant.next_evaluation_at) > mark
        )
        with Session(self.engine) as session:
            moments = session.exec(
                select(due.scalar_subquery(), evaluation.scalar_subquery())
            ).one()
        candidates = [as_utc(moment) for moment in moments if moment is not None]
        if self.pending:
            candidates.append(self.pending[0][0])
        upcoming = min([*candidates, end])
        if upcoming <= now():
            return upcoming
        return min(max(upcoming, mark + self.plan.step), now() + MAX_JUMP, end)

    def _step(self) -> None:
        """One moment: personas text, the bot works, and personas read their phones."""
        self._send_texts()
        if self.stack.work():
            self._read_phones()

    def _send_texts(self) -> None:
        moment = now()
        due: dict[int, list[Text]] = defaultdict(list)
        while self.pending and self.pending[0][0] <= moment:
            _, _, participant_id, text = heapq.heappop(self.pending)
            due[participant_id].append(text)
        if not due:
            return
        self.texts += sum(len(texts) for texts in due.values())
        if self.texting is not None:
            futures = {
                participant_id: self.texting.submit(self._text_all, participant_id, texts)
                for participant_id, texts in due.items()
            }
            exchanges = {pid: future.result() for pid, future in futures.items()}
        else:
            exchanges = {pid: self._text_all(pid, texts) for pid, texts in sorted(due.items())}
        # Personas draw from their generators in one fixed order, whatever the threads did.
        for participant_id in sorted(exchanges):
            persona = self.personas[participant_id]
            for text, replies in exchanges[participant_id]:
                self._schedule(participant_id, persona.answered(text, replies))
        self._read_questions_in_replies()

    def _text_all(
        self, participant_id: int, texts: list[Text]
    ) -> list[tuple[Text, list[Received]]]:
        """Text the bot from one participant's phone, in order; the bot's replies to each."""
        return [(text, self._text(self.phones[participant_id], text.body)) for text in texts]

    def _text(self, phone: str, body: str) -> list[Received]:
        try:
            replies = self.stack.text(phone, body)
        except TextFailed as exc:
            self.errors.append(f"texting {body!r}: {exc}")
            return []
        return [Received(at=now(), body=reply, kind="reply") for reply in replies]

    def _read_questions_in_replies(self) -> None:
        """A reply to a text may ask a question (CHECKIN gets the state question): hand those
        to the personas with the question's assessment, read from its delivery."""
        with Session(self.engine) as session:
            # Every reply of this step is committed: none is still to come below the last id.
            rows = session.exec(
                select(
                    Delivery.id, Delivery.participant_id, Delivery.kind, Delivery.body,
                    Delivery.assessment, Delivery.sent_at,
                )
                .where(col(Delivery.id) > self.delivery_cursor, Delivery.via == "twiml")
                .order_by(col(Delivery.participant_id), col(Delivery.id))
            ).all()
        self.delivery_cursor = max([self.delivery_cursor, *(row[0] for row in rows)])
        for delivery_id, participant_id, kind, body, assessment, sent_at in rows:
            if assessment is None:
                continue
            received = Received(
                at=as_utc(sent_at), body=body or "", kind=kind, question=assessment,
                asks=delivery_id,
            )
            self._schedule(participant_id, self.personas[participant_id].receive(received))

    def _read_phones(self) -> None:
        """Hand each message delivered since the last step to its participant's persona.

        Delivery events are read by id (every callback has settled, so no id is still to come
        below the last one read); a delivered event is a text that reached the phone.
        """
        with Session(self.engine) as session:
            rows = session.exec(
                select(
                    DeliveryEvent.id, DeliveryEvent.at, Delivery.id, Delivery.participant_id,
                    Delivery.kind, Delivery.body, Delivery.assessment, Delivery.context,
                )
                .join(Delivery, col(Delivery.id) == col(DeliveryEvent.delivery_id))
                .where(
                    col(DeliveryEvent.id) > self.event_cursor,
                    col(DeliveryEvent.status).in_(REACHED_PHONE),
                )
                .order_by(col(Delivery.participant_id), col(DeliveryEvent.at), col(Delivery.id))
            ).all()
            # A reminder asks its prompt's question again: the persona needs that question.
            reminded = {
                int(details["reminds"])
                for *_, kind, _, _, details in rows
                if kind == "reminder" and (details or {}).get("reminds")
            }
            prompts = dict(
                session.exec(
                    select(Delivery.id, Delivery.assessment).where(col(Delivery.id).in_(reminded))
                ).all()
            ) if reminded else {}
        for event_id, at, delivery_id, participant_id, kind, body, assessment, details in rows:
            self.event_cursor = max(self.event_cursor, event_id)
            asks: int | None = delivery_id if assessment is not None else None
            if kind == "reminder" and (details or {}).get("reminds"):
                asks = int(details["reminds"])
                assessment = prompts.get(asks)
            received = Received(
                at=as_utc(at), body=body or "", kind=kind, question=assessment, asks=asks
            )
            self._schedule(participant_id, self.personas[participant_id].receive(received))
