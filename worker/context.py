"""What a worker process builds once: settings, engine, Redis, the provider client."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis
from sqlalchemy.engine import Engine

from bot.care.programs import Program, live_programs
from bot.delivery.provider import SmsSender
from bot.delivery.queues import connect_redis
from bot.delivery.ratelimit import RateLimiter
from bot.delivery.sending import BatchSender
from bot.settings import Settings
from bot.store.db import get_engine


@dataclass
class WorkerContext:
    settings: Settings

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
        )


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
