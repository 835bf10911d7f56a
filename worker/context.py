"""What a worker process builds once: settings, engine, Redis, the provider client; and the
RQ worker it runs, whose stop also ends the batch in hand.

On SIGTERM (a host restarting the dyno, about 30 s before SIGKILL) RQ takes no new job and
waits for the current one; the batch in hand ends before its next provider call, the rows it
never handed over go back to the outbox due now (bot.delivery.stopping), and the process
exits. A second SIGTERM or SIGINT is RQ's cold shutdown: rows it leaves in sending are
reconciled at the dispatcher's next tick.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

import redis
from rq import SimpleWorker
from sqlalchemy.engine import Engine

from bot.care.programs import Program, live_programs
from bot.delivery.provider import SmsSender
from bot.delivery.queues import connect_redis
from bot.delivery.ratelimit import RateLimiter
from bot.delivery.sending import BatchSender
from bot.delivery.stopping import retire
from bot.settings import Settings
from bot.store.db import get_engine, session_scope


@dataclass
class WorkerContext:
    settings: Settings
    # Set when the process is told to stop: the batch in hand ends before its next send.
    stopping: threading.Event = field(default_factory=threading.Event)

    @cached_property
    def engine(self) -> Engine:
        return get_engine(self.settings.database_url)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect_redis(self.settings)

    @cached_property
    def sender(self) -> SmsSender:
        return SmsSender(self.settings)

    def programs(self) -> dict[str, Program]:
        return live_programs(self.settings.narratives_dir)

    @cached_property
    def batch_sender(self) -> BatchSender:
        sender_id = self.settings.twilio_messaging_service_sid or self.settings.twilio_from_number
        return BatchSender(
            engine=self.engine,
            settings=self.settings,
            sender=self.sender,
            limiter=RateLimiter(self.redis, sender_id, self.settings.send_rate_per_second),
            programs={},
            stopping=self.stopping,
        )

    def retire(self) -> None:
        """The process is exiting: say so, if it ever sent (see `bot.delivery.stopping.retire`)."""
        if "batch_sender" in self.__dict__:
            with session_scope(self.engine) as session:
                retire(session=session, worker_id=self.batch_sender.worker_id)


_current: WorkerContext | None = None


def current() -> WorkerContext:
    """The process's context, built from the environment on first use."""
    global _current
    if _current is None:
        _current = WorkerContext(Settings.from_env())
    return _current


def use(settings: Settings) -> WorkerContext:
    """Replace the process's context (tests, `bot run`, the benchmark)."""
    global _current
    _current = WorkerContext(settings)
    return _current


class GracefulWorker(SimpleWorker):
    """Runs jobs in this process (the pooled provider client stays warm); stops between sends."""

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        current().stopping.set()

    def teardown(self) -> None:
        super().teardown()
        current().retire()
