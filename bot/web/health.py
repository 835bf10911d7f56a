"""GET /healthz: the database, Redis, the backlog of due messages, the dispatcher's ticks.

Plain /healthz is for an uptime monitor: 503 whenever texts are not going out. `?check=web`
says only that this web process answers, for the host's health check, which restarts a web
process that fails it; a stuck dispatcher or a backlog is no reason to restart the web.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import func, select, text
from sqlmodel import col

from bot import web
from bot.clock import as_utc, now
from bot.settings import Settings
from bot.store.models import Delivery, DeliveryStatus, WorkerHeartbeat

bp = Blueprint("health", __name__)

# A dispatcher that has not finished a tick for this long (or three intervals) is stuck.
DISPATCHER_STALE_SECONDS = 30.0
DISPATCHER_IDS = "dispatcher:%"  # how worker/dispatcher.py names its heartbeat
# Due and not yet handed to the provider: waiting in SQL, on the queue, or in a worker's hands.
WAITING = (DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED, DeliveryStatus.SENDING)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    if request.args.get("check") == "web":
        return jsonify(status="ok", check="web"), 200
    settings = web.settings()
    checks = {**_database_checks(settings, now()), "redis": _redis_check()}
    healthy = all(check["status"] == "ok" for check in checks.values())
    return jsonify(status="ok" if healthy else "failing", **checks), 200 if healthy else 503


def _seconds(since: datetime | None, moment: datetime) -> float | None:
    return None if since is None else round((moment - as_utc(since)).total_seconds(), 1)


def _database_checks(settings: Settings, moment: datetime) -> dict[str, dict[str, Any]]:
    """The database, and what it says of the backlog and of the dispatcher."""
    stale_after = max(DISPATCHER_STALE_SECONDS, 3 * settings.dispatch_interval_seconds)
    beat_at = col(WorkerHeartbeat.beat_at)
    try:
        with web.engine().connect() as connection:
            connection.execute(text("SELECT 1"))
            due, oldest = connection.execute(
                select(func.count(), func.min(col(Delivery.due_at))).where(
                    col(Delivery.status).in_(WAITING), col(Delivery.due_at) <= moment
                )
            ).one()
            last_tick, ticking = connection.execute(
                select(
                    func.max(beat_at),
                    func.count().filter(beat_at >= moment - timedelta(seconds=stale_after)),
                ).where(col(WorkerHeartbeat.worker_id).like(DISPATCHER_IDS))
            ).one()
    except Exception as exc:
        unknown = {"status": "unknown", "reason": "the database check failed"}
        return {
            "database": {"status": "error", "error": type(exc).__name__},
            "backlog": unknown,
            "dispatcher": dict(unknown),
        }
    oldest_seconds = _seconds(oldest, moment)
    late = oldest_seconds is not None and oldest_seconds > settings.health_max_backlog_seconds
    return {
        "database": {"status": "ok"},
        "backlog": {
            "status": "behind" if late else "ok",
            "due": due,
            "oldest_due_seconds": oldest_seconds,
            "max_seconds": settings.health_max_backlog_seconds,
        },
        "dispatcher": {
            "status": "ok" if ticking else "stale",
            "last_tick_seconds_ago": _seconds(last_tick, moment),
            "ticking": ticking,  # dispatchers that finished a tick within stale_after_seconds
            "stale_after_seconds": stale_after,
        },
    }


def _redis_check() -> dict[str, Any]:
    try:
        redis = current_app.extensions.get("tend.redis")
        if redis is None:
            from bot.delivery.queues import connect_redis

            redis = current_app.extensions["tend.redis"] = connect_redis(web.settings())
        redis.ping()
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}
    return {"status": "ok"}
