"""`bot simulate`: simulated participants go through a program on a virtual clock.

Everything runs in this process, on the production path, under one freezegun clock: the bot's
web app and the sandbox provider on real HTTP ports, the SQL database, the RQ queue on Redis,
the dispatcher's tick and an RQ SimpleWorker in burst mode, the real twilio library, signed
status callbacks and signed inbound webhooks. The clock jumps from one thing that happens to the
next (a delivery falling due, a hub evaluation, a persona's text), so weeks take seconds. Quiet
hours and the daily cap stay on; only the carrier's send rate is lifted, as it means nothing on
a virtual clock.
"""

from __future__ import annotations

import heapq
import json
import logging
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import redis
from freezegun import api as freezegun_api
from freezegun import freeze_time
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue, SimpleWorker
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from werkzeug.serving import BaseWSGIServer, make_server

from bot import create_app
from bot.care.programs import Program, ProgramError, programs_in
from bot.care.timing import in_quiet_hours, local_moment, zone
from bot.clock import as_utc, now
from bot.delivery.queues import connect_redis, delivery_queue, embedded_redis_url
from bot.delivery.status import apply_unmatched
from bot.participants.enrollment import enroll
from bot.sandbox import create_sandbox_app, sandbox_of
from bot.sandbox.app import KeepAliveHandler
from bot.sandbox.inbound import BotError, text_the_bot
from bot.sandbox.state import Sandbox
from bot.settings import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, SANDBOX_FROM_NUMBER, Settings
from bot.store.db import get_engine, session_scope
from bot.store.models import (
    Answer,
    DecisionPoint,
    Delivery,
    DeliveryEvent,
    DeliveryStatus,
    InboundMessage,
    InterventionRun,
    Participant,
)
from bot.tools.personas import PERSONAS, Persona, Received, Text, make_persona, persona_names
from worker import context, dispatcher

log = logging.getLogger(__name__)

ENROLL_AT = clock_time(9, 0)  # everyone is enrolled at 9:00 on the first day, in the first zone
FIRST_PHONE = 4155550000  # +1 415 555 0000 onwards: fictional numbers the sandbox accepts
MAX_PARTICIPANTS = 10_000
DEFAULT_START = date(2026, 3, 2)  # a Monday; a fixed default keeps runs reproducible
MAX_JUMP = timedelta(days=1)  # the clock never skips more than a day at once
# The clock moves at least this far between steps: a minute for a few people; for a
# population, ten, so each step sends a batch (replies take minutes to hours anyway).
RESOLUTION = timedelta(minutes=1)
POPULATION_RESOLUTION = timedelta(minutes=10)
POPULATION = 10  # more participants than this use the population resolution
# The sandbox posts each status this long after the last (real seconds): long enough that the
# worker has usually stored the sid, as with Twilio, short enough not to hold up the clock.
CALLBACK_DELAY = 0.01
SETTLE_SECONDS = 30.0  # how long status callbacks may take to arrive, in real time
POLL_SECONDS = 0.05  # how soon the HTTP servers notice they are asked to stop
TEXT_THREADS = 4  # participants texting the bot at once (each one's texts stay in order)
REACHED_PHONE = (DeliveryStatus.DELIVERED,)
QUIET_LOGGERS = ("bot", "worker", "rq", "werkzeug", "alembic")


class SimulationError(RuntimeError):
    """The simulation cannot run (a program or persona that does not exist, a used database)."""


def real_seconds() -> float:
    """Wall-clock seconds, unaffected by the virtual clock."""
    return freezegun_api.real_monotonic()


@dataclass(frozen=True)
class Plan:
    """What to simulate."""

    program: str
    persona: str = "engaged"  # a persona name, or "mix"
    days: int = 56
    participants: int = 1
    seed: int = 1
    start: date = DEFAULT_START
    timezones: tuple[str, ...] = ("America/New_York",)  # assigned to participants in turn

    @property
    def step(self) -> timedelta:
        """The least the clock moves between two steps."""
        return RESOLUTION if self.participants <= POPULATION else POPULATION_RESOLUTION

    def validated(self, programs: dict[str, Program]) -> Plan:
        """This plan, or SimulationError saying what is wrong with it."""
        if self.program not in programs:
            known = ", ".join(sorted(programs)) or "none"
            raise SimulationError(f"no program named {self.program!r} (programs: {known})")
        if not 1 <= self.participants <= MAX_PARTICIPANTS:
            raise SimulationError(f"participants must be 1 to {MAX_PARTICIPANTS:,}")
        if self.days < 1:
            raise SimulationError("days must be at least 1")
        if not self.timezones:
            raise SimulationError("give at least one time zone")
        try:
            persona_names(self.persona, 1)
            for name in self.timezones:
                zone(name)
        except ValueError as exc:
            raise SimulationError(str(exc)) from None
        return self


@dataclass(frozen=True)
class Simulated:
    """One simulated participant."""

    id: int
    phone: str
    persona: str
    timezone: str


@dataclass
class Outcome:
    """What a finished simulation did; the database holds the rest."""

    plan: Plan
    participants: list[Simulated]
    started: datetime  # virtual
    ended: datetime  # virtual
    wall_seconds: float
    steps: int
    texts: int  # texts the personas sent
    errors: list[str] = field(default_factory=list)


def phone_number(index: int) -> str:
    """The simulated participant number `index` (0-based), E.164."""
    return f"+1{FIRST_PHONE + index}"


# --- the stack: bot and sandbox on real HTTP, a worker context, a queue of our own ---------------


class _QuietHandler(KeepAliveHandler):
    """HTTP/1.1 keep-alive (as the sandbox serves it), without an access-log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _unavailable(environ: Any, start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


def _server() -> BaseWSGIServer:
    return make_server("127.0.0.1", 0, _unavailable, threaded=True, request_handler=_QuietHandler)


class BurstWorker(SimpleWorker):
    """rq's SimpleWorker, run in burst mode in this process between clock steps. It does not
    subscribe to rq's remote commands (stop, kill): their pubsub thread is joined with a
    one-second timeout at the end of every burst, which would cost up to a second per step."""

    def subscribe(self) -> None:
        return None


class Stack:
    """The bot's web app and the sandbox on free ports, wired to each other, and the worker's
    context pointing at both. `base` gives the database, Redis and content; the rest is set
    here so nothing can reach Twilio or another deployment's queue."""

    def __init__(self, base: Settings) -> None:
        self._servers = [_server(), _server()]
        bot_server, sandbox_server = self._servers
        bot_url = f"http://127.0.0.1:{bot_server.server_port}"
        sandbox_url = f"http://127.0.0.1:{sandbox_server.server_port}"
        self._embedded: redis.Redis | None = None
        redis_url = base.redis_url
        if base.uses_embedded_redis:
            self._embedded = connect_redis(base)
            redis_url = embedded_redis_url(self._embedded)
        self.settings = base.with_overrides(
            env="test" if base.env == "test" else "development",
            redis_url=redis_url,
            public_base_url=bot_url,
            twilio_api_base_url=sandbox_url,
            twilio_account_sid=SANDBOX_ACCOUNT_SID,
            twilio_auth_token=SANDBOX_AUTH_TOKEN,
            twilio_from_number=SANDBOX_FROM_NUMBER,
            twilio_messaging_service_sid="",
            send_rate_per_second=1_000_000.0,
            queue_name=f"simulate-{uuid.uuid4().hex[:12]}",
        )
        bot_server.app = create_app(self.settings)
        self.sandbox_app = create_sandbox_app(
            account_sid=self.settings.twilio_account_sid,
            auth_token=self.settings.twilio_auth_token,
            bot_inbound_url=f"{bot_url}/twilio/sms",
            bot_number=self.settings.twilio_from_number,
            public_url=sandbox_url,
            callback_delay=CALLBACK_DELAY,
        )
        sandbox_server.app = self.sandbox_app
        self._threads = [
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                name="simulate-http", daemon=True,
            )
            for server in self._servers
        ]
        for thread in self._threads:
            thread.start()
        self.worker_context = context.use(self.settings)
        self.engine: Engine = get_engine(self.settings.database_url)
        self.queue: Queue = delivery_queue(self.settings, self.worker_context.redis)
        self.worker = BurstWorker([self.queue], connection=self.queue.connection)

    @property
    def sandbox(self) -> Sandbox:
        return sandbox_of(self.sandbox_app)

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.sandbox.close()
        self.queue.delete(delete_jobs=True)
        if self._embedded is not None:
            # The server closes the connection as it stops: that is the answer, not a reason to
            # retry with backoff (seconds of sleep).
            self._embedded.set_retry(Retry(NoBackoff(), 0))
            self._embedded.shutdown(nosave=True)


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Hold the service's INFO logs (a line per message) while simulating; warnings still show."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# --- the simulation ------------------------------------------------------------------------------


class Simulation:
    """Runs a plan on a stack: enroll, then step the clock until the last day ends."""

    def __init__(
        self, plan: Plan, stack: Stack, *, progress: Callable[[str], None] | None = None
    ) -> None:
        self.plan = plan
        self.stack = stack
        self.settings = stack.settings
        self.engine = stack.engine
        self.progress = progress
        self.programs = programs_in(self.settings.narratives_dir)
        self.personas: dict[int, Persona] = {}
        self.phones: dict[int, str] = {}
        self.participants: list[Simulated] = []
        self.pending: list[tuple[datetime, int, int, Text]] = []  # (at, order, participant, text)
        self.order = 0
        self.event_cursor = 0  # the last delivery_event read
        self.delivery_cursor = 0  # the last delivery looked at for questions asked in replies
        self.texts = 0
        self.errors: list[str] = []
        self.failed_seen = 0
        self.texting = ThreadPoolExecutor(max_workers=TEXT_THREADS, thread_name_prefix="persona")

    def run(self) -> Outcome:
        """Simulate the plan; returns what happened (the database has the details)."""
        first_zone = zone(self.plan.timezones[0])
        started = local_moment(self.plan.start, ENROLL_AT, first_zone)
        end = started + timedelta(days=self.plan.days)
        wall = real_seconds()
        steps = 0
        with session_scope(self.engine) as session:
            if session.exec(select(func.count()).select_from(Participant)).one():
                raise SimulationError(
                    "the database already has participants; simulate needs an empty one "
                    "(it would mix its people with real ones)"
                )
        try:
            with freeze_time(started, tick=True) as clock:
                self._enroll(end)
                mark = now()
                self._step()
                steps += 1
                reported = 0
                while mark < end:
                    target = self._next_moment(mark, end)
                    if target > now():
                        clock.move_to(target)
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
                ended = now()
        finally:
            self.texting.shutdown(wait=True)
        return Outcome(
            plan=self.plan,
            participants=self.participants,
            started=started,
            ended=ended,
            wall_seconds=real_seconds() - wall,
            steps=steps,
            texts=self.texts,
            errors=self.errors,
        )

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

        Deliveries already due count (the next tick sends them at once); an evaluation counts
        once it is after the last step, so one the hub leaves in the past cannot stall the clock.
        """
        with Session(self.engine) as session:
            due = session.exec(
                select(func.min(Delivery.due_at)).where(
                    Delivery.status == DeliveryStatus.SCHEDULED
                )
            ).one()
            evaluation = session.exec(
                select(func.min(Participant.next_evaluation_at)).where(
                    col(Participant.next_evaluation_at) > mark
                )
            ).one()
        candidates = [as_utc(moment) for moment in (due, evaluation) if moment is not None]
        if self.pending:
            candidates.append(self.pending[0][0])
        upcoming = min([*candidates, end])
        if upcoming <= now():
            return upcoming
        return min(max(upcoming, mark + self.plan.step), now() + MAX_JUMP, end)

    def _step(self) -> None:
        """One moment: personas text, the dispatcher ticks, a worker bursts, callbacks settle,
        and personas read what reached their phones."""
        self._send_texts()
        dispatcher.tick(engine=self.engine, queue=self.stack.queue, settings=self.settings)
        if self.stack.queue.count:
            self.stack.worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
            self._note_failed_jobs()
        self._settle()
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
        futures = {
            participant_id: self.texting.submit(self._text_all, participant_id, texts)
            for participant_id, texts in due.items()
        }
        # Personas draw from their generators in one fixed order, whatever the threads did.
        for participant_id in sorted(futures):
            persona = self.personas[participant_id]
            for text, replies in futures[participant_id].result():
                self._schedule(participant_id, persona.answered(text, replies))
        self._read_questions_in_replies()

    def _read_questions_in_replies(self) -> None:
        """A reply to a text may ask a question (CHECKIN gets the state question): hand those
        to the personas with the question's assessment, read from its delivery."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(
                    Delivery.id, Delivery.participant_id, Delivery.kind, Delivery.body,
                    Delivery.assessment, Delivery.sent_at,
                )
                .where(
                    col(Delivery.id) > self.delivery_cursor,
                    Delivery.via == "twiml",
                    col(Delivery.assessment).is_not(None),
                )
                .order_by(col(Delivery.participant_id), col(Delivery.id))
            ).all()
            self.delivery_cursor = session.exec(select(func.max(Delivery.id))).one() or 0
        for delivery_id, participant_id, kind, body, assessment, sent_at in rows:
            received = Received(
                at=as_utc(sent_at), body=body or "", kind=kind, question=assessment,
                asks=delivery_id,
            )
            self._schedule(participant_id, self.personas[participant_id].receive(received))

    def _text_all(
        self, participant_id: int, texts: list[Text]
    ) -> list[tuple[Text, list[Received]]]:
        """Text the bot from one participant's phone, in order; the bot's replies to each."""
        return [(text, self._text(self.phones[participant_id], text.body)) for text in texts]

    def _text(self, phone: str, body: str) -> list[Received]:
        """One text from the phone, as the sandbox's phone page sends it: the sandbox records it
        and posts Twilio's signed webhook to the bot over HTTP; the bot's TwiML is the reply."""
        try:
            exchange = text_the_bot(self.stack.sandbox, phone=phone, body=body)
        except BotError as exc:
            self.errors.append(f"texting {body!r}: {exc}")
            return []
        return [Received(at=now(), body=reply.body, kind="reply") for reply in exchange.replies]

    def _note_failed_jobs(self) -> None:
        """Report each job the worker failed (its exception), once."""
        registry = self.stack.queue.failed_job_registry
        if registry.count <= self.failed_seen:
            return
        self.failed_seen = registry.count
        for job in registry.get_job_ids():
            fetched = self.stack.queue.fetch_job(job)
            detail = (fetched.exc_info or "").strip().splitlines() if fetched else []
            message = f"worker job {job} failed: {detail[-1] if detail else 'no details'}"
            if message not in self.errors:
                self.errors.append(message)
                log.error("%s", fetched.exc_info if fetched else message)

    def _settle(self) -> None:
        """Wait for the sandbox's status callbacks, then apply those that beat the worker."""
        callbacks = self.stack.sandbox.callbacks
        deadline = real_seconds() + SETTLE_SECONDS
        while callbacks.counts()["in_flight"]:
            if real_seconds() > deadline:
                raise SimulationError(f"status callbacks did not settle in {SETTLE_SECONDS:g} s")
            time.sleep(0.001)
        with session_scope(self.engine) as session:
            apply_unmatched(
                session=session, older_than_seconds=0,
                max_attempts=self.settings.max_send_attempts,
            )

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


# --- what it did: transcript and summary ---------------------------------------------------------


def _stamp(moment: datetime, tz: str) -> str:
    return as_utc(moment).astimezone(zone(tz)).strftime("%a %Y-%m-%d %H:%M")


def transcript(engine: Engine, participant_id: int) -> list[str]:
    """One participant's conversation in order, stamped in their local time; each reply says
    which question it was credited to, and questions recorded unanswered are marked."""
    with Session(engine) as session:
        participant = session.get(Participant, participant_id)
        if participant is None:
            raise SimulationError(f"no participant {participant_id}")
        sent = session.exec(
            select(Delivery).where(
                Delivery.participant_id == participant_id,
                col(Delivery.sent_at).is_not(None),
                col(Delivery.body).is_not(None),
            )
        ).all()
        received = session.exec(
            select(InboundMessage).where(InboundMessage.participant_id == participant_id)
        ).all()
        answers = session.exec(
            select(Answer, Delivery)
            .join(Delivery, col(Delivery.id) == col(Answer.delivery_id))
            .where(Answer.participant_id == participant_id)
        ).all()
    credited = {answer.inbound_message_id: (answer, asked) for answer, asked in answers}
    # (moment, order at the same moment, id, lines): a text comes before the bot's answer to it.
    entries: list[tuple[datetime, int, int, list[str]]] = []
    for delivery in sent:
        assert delivery.sent_at is not None and delivery.id is not None
        note = ""
        if delivery.status in (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED):
            note = f"   [{delivery.status}]"
        lines = (delivery.body or "").splitlines() or [""]
        entries.append(
            (as_utc(delivery.sent_at), 1, delivery.id,
             [f"bot > {lines[0]}{note}", *(f"      {line}" for line in lines[1:])])
        )
    for message in received:
        assert message.id is not None
        if message.id in credited:
            answer, asked = credited[message.id]
            value = answer.label if answer.label is not None else answer.value
            shown = "kept as text" if value is None else f"= {_number(value)}"
            note = f"[answers {_question(asked)} {shown}]"
        elif message.intent == "answer":
            note = "[not understood]"
        else:
            note = f"[{message.intent}]" if message.intent else ""
        lines = message.body.splitlines() or [""]
        entries.append(
            (as_utc(message.received_at), 0, message.id,
             [f"you < {lines[0]}" + (f"   {note}" if note else ""),
              *(f"      {line}" for line in lines[1:])])
        )
    for answer, asked in answers:
        if answer.missing and answer.id is not None:
            entries.append(
                (as_utc(answer.answered_at), 2, answer.id,
                 [f"      (no answer to {_question(asked)})"])
            )
    entries.sort(key=lambda entry: entry[:3])
    output: list[str] = []
    for moment, _, _, lines in entries:
        stamp = _stamp(moment, participant.timezone)
        output.append(f"{stamp}  {lines[0]}")
        output.extend(f"{' ' * len(stamp)}  {line}" for line in lines[1:])
    return output


def _question(delivery: Delivery) -> str:
    return delivery.event_key or delivery.kind


def _number(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class Summary:
    """The whole-journey figures of a simulation, read back from the database."""

    figures: dict[str, Any]
    by_persona: dict[str, dict[str, int]]
    outcomes: dict[str, dict[str, int]]
    randomization: list[dict[str, Any]]


def summarize(engine: Engine, settings: Settings, outcome: Outcome) -> Summary:
    """Count what happened, from the database (the simulation's participants only)."""
    ids = [p.id for p in outcome.participants]
    persona_of = {p.id: p.persona for p in outcome.participants}
    programs = programs_in(settings.narratives_dir)
    with Session(engine) as session:
        people = {
            p.id: p
            for p in session.exec(select(Participant).where(col(Participant.id).in_(ids))).all()
        }
        sent = session.exec(
            select(
                Delivery.participant_id, Delivery.via, Delivery.kind, Delivery.status,
                Delivery.sent_at, Delivery.send_started_at, Delivery.assessment,
            ).where(col(Delivery.participant_id).in_(ids), col(Delivery.sent_at).is_not(None))
        ).all()
        texts = session.exec(
            select(InboundMessage.participant_id, func.count())
            .where(col(InboundMessage.participant_id).in_(ids))
            .group_by(col(InboundMessage.participant_id))
        ).all()
        answers = session.exec(
            select(Answer.participant_id, Answer.missing, func.count())
            .where(col(Answer.participant_id).in_(ids))
            .group_by(col(Answer.participant_id), col(Answer.missing))
        ).all()
        runs = session.exec(
            select(InterventionRun.intervention, InterventionRun.outcome, func.count())
            .where(col(InterventionRun.participant_id).in_(ids))
            .group_by(col(InterventionRun.intervention), col(InterventionRun.outcome))
        ).all()
        decisions = session.exec(
            select(
                DecisionPoint.decision, DecisionPoint.choice, DecisionPoint.available,
                DecisionPoint.probability,
            ).where(col(DecisionPoint.participant_id).in_(ids))
        ).all()

    by_persona: dict[str, Counter[str]] = defaultdict(Counter)
    for simulated in outcome.participants:
        by_persona[simulated.persona]["participants"] += 1
        if people[simulated.id].opted_out_at is not None:
            by_persona[simulated.persona]["opted out"] += 1
    quiet = after_stop = 0
    confirmations: Counter[int] = Counter()
    totals: Counter[str] = Counter()
    for participant_id, via, kind, status, sent_at, started_at, assessment in sent:
        person = people[participant_id]
        totals["messages"] += 1
        totals["scheduled" if via == "api" else "webhook replies"] += 1
        if status in (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED):
            totals["undelivered"] += 1
        if assessment is not None:
            totals["questions"] += 1
            by_persona[persona_of[participant_id]]["questions"] += 1
        # A send is timed from when the worker decided and called the provider.
        moment = as_utc(started_at or sent_at)
        if via == "api":
            program = programs.get(person.program)
            start, end = (program.quiet_hours if program and program.quiet_hours else None) or (
                settings.quiet_hours_start, settings.quiet_hours_end
            )
            quiet += in_quiet_hours(moment, zone(person.timezone), start, end)
        if person.opted_out_at is not None and moment > as_utc(person.opted_out_at):
            if kind == "confirmation":
                confirmations[participant_id] += 1
            else:
                after_stop += 1
    after_stop += sum(count - 1 for count in confirmations.values())
    for participant_id, count in texts:
        totals["texts"] += count
        by_persona[persona_of[participant_id]]["texts"] += count
    for participant_id, missing, count in answers:
        key = "missing" if missing else "answers"
        totals[key] += count
        by_persona[persona_of[participant_id]][key] += count

    outcomes: dict[str, dict[str, int]] = defaultdict(dict)
    for intervention, result, count in runs:
        outcomes[intervention][result or "running"] = count
    randomization = _frequencies(decisions)

    wall = max(outcome.wall_seconds, 1e-9)
    days = (outcome.ended - outcome.started) / timedelta(days=1)
    plan = outcome.plan
    figures: dict[str, Any] = {
        "program": plan.program,
        "persona": plan.persona,
        "participants": len(ids),
        "days": plan.days,
        "seed": plan.seed,
        "start": plan.start.isoformat(),
        "messages": totals["messages"],
        "scheduled_messages": totals["scheduled"],
        "webhook_replies": totals["webhook replies"],
        "undelivered": totals["undelivered"],
        "texts": totals["texts"],
        "questions": totals["questions"],
        "answers": totals["answers"],
        "missing": totals["missing"],
        "quiet_hour_sends": quiet,
        "after_stop": after_stop,
        "opted_out": sum(1 for p in people.values() if p.opted_out_at is not None),
        "intervention_runs": sum(sum(o.values()) for o in outcomes.values()),
        "decision_points": len(decisions),
        "errors": len(outcome.errors),
        "steps": outcome.steps,
        "wall_seconds": round(outcome.wall_seconds, 2),
        "simulated_days_per_second": round(days / wall, 2),
        "participant_days_per_second": round(days * len(ids) / wall, 1),
        "messages_per_second": round(totals["messages"] / wall, 1),
    }
    return Summary(
        figures=figures,
        by_persona={name: dict(counts) for name, counts in by_persona.items()},
        outcomes=dict(outcomes),
        randomization=randomization,
    )


def _frequencies(
    decisions: list[tuple[str, str, bool, float | None]],
) -> list[dict[str, Any]]:
    """Per decision rule (occurrences together) and choice: how often it was drawn, against the
    probability the program declared for it."""
    drawn: dict[str, Counter[str]] = defaultdict(Counter)
    declared: dict[tuple[str, str], list[float]] = defaultdict(list)
    unavailable: Counter[str] = Counter()
    for decision, choice, available, probability in decisions:
        rule = decision.split("#", 1)[0]
        if not available:
            unavailable[rule] += 1
            continue
        if probability is None:
            continue
        drawn[rule][choice] += 1
        declared[(rule, choice)].append(probability)
    rows = []
    for rule in sorted(drawn):
        total = sum(drawn[rule].values())
        for choice in sorted(drawn[rule]):
            probabilities = declared[(rule, choice)]
            rows.append(
                {
                    "decision": rule,
                    "choice": choice,
                    "n": drawn[rule][choice],
                    "of": total,
                    "observed": round(drawn[rule][choice] / total, 3),
                    "declared": round(sum(probabilities) / len(probabilities), 3),
                    "unavailable": unavailable[rule],
                }
            )
    return rows


def format_summary(summary: Summary) -> list[str]:
    """The summary as lines for a terminal."""
    f = summary.figures

    def row(label: str, value: object, note: str = "") -> str:
        return f"  {label:<24}{value:>8}" + (f"  ({note})" if note else "")

    lines = [
        f"Summary: {f['participants']} participant(s) in {f['program']}, {f['days']} days "
        f"from {f['start']} (persona {f['persona']}, seed {f['seed']})",
        row("messages sent", f["messages"], f"{f['scheduled_messages']} scheduled, "
            f"{f['webhook_replies']} replies to texts, {f['undelivered']} undelivered"),
        row("texts from participants", f["texts"]),
        row("questions asked", f["questions"],
            f"{f['answers']} answered, {f['missing']} recorded missing"),
        row("sends in quiet hours", f["quiet_hour_sends"], "must be 0"),
        row("messages after STOP", f["after_stop"],
            f"besides the confirmation; must be 0; {f['opted_out']} opted out"),
        row("errors", f["errors"]),
    ]
    if f["participants"] > 1:
        columns = ("people", "texts", "questions", "answered", "opted out")
        lines.append(f"  {'by persona':<24}" + "".join(f"{c:>11}" for c in columns))
        for name in [n for n in PERSONAS if n in summary.by_persona]:
            c = summary.by_persona[name]
            rate = c.get("answers", 0) / c["questions"] if c.get("questions") else 0.0
            values = (c["participants"], c.get("texts", 0), c.get("questions", 0),
                      f"{rate:.0%}", c.get("opted out", 0))
            lines.append(f"    {name:<22}" + "".join(f"{v:>11}" for v in values))
    if summary.outcomes:
        kinds = ("achieved", "not achieved", "disengaged", "running")
        lines.append(f"  {'micro interventions':<24}" + "".join(f"{k:>14}" for k in kinds))
        for intervention in sorted(summary.outcomes):
            counts = summary.outcomes[intervention]
            lines.append(
                f"    {intervention:<22}" + "".join(f"{counts.get(k, 0):>14}" for k in kinds)
            )
    else:
        lines.append(f"  {'micro interventions':<24}none ran")
    if summary.randomization:
        lines.append(f"  {'randomization':<24}{'drawn':>14}{'observed':>10}{'declared':>10}")
        decision = None
        for drawn in summary.randomization:
            if drawn["decision"] != decision:
                decision = drawn["decision"]
                lines.append(f"    {decision}")
            lines.append(
                f"      {drawn['choice']:<20}{drawn['n']:>7} / {drawn['of']:<4}"
                f"{drawn['observed']:>10.3f}{drawn['declared']:>10.3f}"
            )
    else:
        lines.append(f"  {'randomization':<24}no randomized decision points")
    lines.append(
        f"  wall time {f['wall_seconds']:.1f} s: {f['simulated_days_per_second']:.1f} simulated "
        f"days/s, {f['participant_days_per_second']:.0f} participant-days/s, "
        f"{f['messages_per_second']:.0f} messages/s ({f['steps']} clock steps)"
    )
    return lines


def figures_json(summary: Summary) -> str:
    """One JSON line: the figures, interventions' outcomes and randomization frequencies."""
    return json.dumps(
        {**summary.figures, "outcomes": summary.outcomes, "randomization": summary.randomization}
    )


# --- running it -----------------------------------------------------------------------------------


def simulate(
    plan: Plan, settings: Settings, *, progress: Callable[[str], None] | None = None
) -> Outcome:
    """Run `plan` against the database and Redis of `settings` (schema already in place)."""
    try:
        plan = plan.validated(programs_in(settings.narratives_dir))
    except ProgramError as exc:
        raise SimulationError("the programs have problems:\n" + str(exc)) from None
    with quiet_logs():
        stack = Stack(settings)
        try:
            return Simulation(plan, stack, progress=progress).run()
        finally:
            stack.close()


def run_command(
    plan: Plan,
    base: Settings,
    *,
    database_url: str | None,
    echo: Callable[[str], None],
    progress: Callable[[str], None] | None,
) -> Summary:
    """`bot simulate`: a fresh temporary SQLite database and embedded Redis unless told
    otherwise; prints the transcript (one participant) and the summary, then one JSON line."""
    with tempfile.TemporaryDirectory(prefix="tend-simulate-") as folder:
        settings = base.with_overrides(
            env="test" if base.env == "test" else "development",
            instance_dir=Path(folder),
            database_url=database_url or f"sqlite:///{Path(folder) / 'simulate.sqlite3'}",
        )
        with quiet_logs():
            from bot.store.migrate import upgrade  # alembic logs its plugins as it is imported

            upgrade(settings)
        engine = get_engine(settings.database_url)
        try:
            outcome = simulate(plan, settings, progress=progress)
            summary = summarize(engine, settings, outcome)
            if plan.participants == 1:
                person = outcome.participants[0]
                program = programs_in(settings.narratives_dir)[plan.program]
                echo(
                    f"{program.title}: one {person.persona} participant "
                    f"({PERSONAS[person.persona].summary}), {plan.days} days from "
                    f"{_stamp(outcome.started, person.timezone)} ({person.timezone})"
                )
                for line in transcript(engine, person.id):
                    echo(line)
                echo("")
            for line in format_summary(summary):
                echo(line)
            for error in outcome.errors:
                echo(f"  error: {error}")
            echo(figures_json(summary))
        finally:
            engine.dispose()
    return summary
