"""/healthz: what an uptime monitor and a host's health check read, on the real stack."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlmodel import Session, select

from bot import create_app
from bot.clock import now
from bot.delivery.queues import delivery_queue
from bot.settings import Settings
from bot.store.models import Delivery, DeliveryStatus, Participant
from worker import dispatcher


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ticked(settings: Settings, engine, redis_conn: redis.Redis) -> None:
    """A dispatcher tick, as `bot dispatcher` runs one every second."""
    dispatcher.tick(engine=engine, queue=delivery_queue(settings, redis_conn), settings=settings)


def health(client: FlaskClient, query: str = "") -> tuple[int, dict]:
    response = client.get(f"/healthz{query}")
    return response.status_code, response.json


def waiting(session: Session, *ages_in_seconds: int, status: str = DeliveryStatus.SCHEDULED):
    """Messages to one participant, due `ages_in_seconds` ago (negative: not due yet)."""
    person = session.exec(select(Participant)).first()
    if person is None:
        person = Participant(phone="+14155550123", program="daily-checkin", timezone="UTC")
        session.add(person)
        session.flush()
    for age in ages_in_seconds:
        session.add(Delivery(participant_id=person.id or 0, kind="event", status=status,
                             due_at=now() - timedelta(seconds=age)))
    session.commit()


def test_it_is_healthy_when_the_dispatcher_ticks_and_nothing_is_late(ticked, client):
    status, body = health(client)
    assert status == 200
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body.items() if name != "status"} == {
        "database": "ok", "redis": "ok", "backlog": "ok", "dispatcher": "ok",
    }
    assert body["backlog"] == {"status": "ok", "due": 0, "oldest_due_seconds": None,
                               "max_seconds": 300}
    assert body["dispatcher"]["ticking"] == 1
    assert 0 <= body["dispatcher"]["last_tick_seconds_ago"] < 5


def test_redis_down_fails_it_naming_redis(ticked, settings: Settings):
    app = create_app(settings.with_overrides(redis_url=f"redis://127.0.0.1:{closed_port()}/0"))
    status, body = health(app.test_client())
    assert status == 503
    assert body["status"] == "failing"
    assert body["redis"] == {"status": "error", "error": "ConnectionError"}
    assert body["database"]["status"] == body["dispatcher"]["status"] == "ok"


def test_the_database_down_fails_it_and_leaves_backlog_and_dispatcher_unknown(
    settings: Settings,
):
    unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/tend"
    app = create_app(settings.with_overrides(database_url=unreachable))
    status, body = health(app.test_client())
    assert status == 503
    assert body["database"]["status"] == "error"
    assert body["backlog"]["status"] == body["dispatcher"]["status"] == "unknown"
    assert body["redis"]["status"] == "ok"


def test_a_dispatcher_that_stopped_ticking_fails_it_after_30_seconds(ticked, client):
    with freeze_time(now() + timedelta(seconds=25)):
        assert health(client)[0] == 200
    with freeze_time(now() + timedelta(seconds=31)):
        status, body = health(client)
    assert status == 503
    assert body["dispatcher"]["status"] == "stale"
    assert body["dispatcher"]["ticking"] == 0
    assert body["dispatcher"]["last_tick_seconds_ago"] >= 31
    assert body["database"]["status"] == body["redis"]["status"] == "ok"


def test_a_dispatcher_that_never_ticked_fails_it(client):
    status, body = health(client)
    assert status == 503
    assert body["dispatcher"] == {"status": "stale", "last_tick_seconds_ago": None,
                                  "ticking": 0, "stale_after_seconds": 30.0}


def test_a_backlog_within_the_threshold_is_counted_and_healthy(ticked, client, session):
    waiting(session, 120, 30)
    waiting(session, 3600, status=DeliveryStatus.SENT)  # sent: not a backlog
    waiting(session, -3600)  # not due yet
    status, body = health(client)
    assert status == 200
    assert body["backlog"]["due"] == 2
    assert 120 <= body["backlog"]["oldest_due_seconds"] < 125


@pytest.mark.parametrize("stuck", [DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED])
def test_a_backlog_older_than_the_threshold_fails_it(ticked, settings, session, stuck):
    # Queued but never sent is as late as never claimed: the workers are down.
    waiting(session, 240, status=stuck)
    app = create_app(settings.with_overrides(health_max_backlog_seconds=180))
    status, body = health(app.test_client())
    assert status == 503
    assert body["backlog"]["status"] == "behind"
    assert body["backlog"]["due"] == 1 and body["backlog"]["max_seconds"] == 180
    assert body["database"]["status"] == body["dispatcher"]["status"] == "ok"


def test_the_web_check_only_says_the_process_answers(settings: Settings):
    # Neither a database, Redis nor a dispatcher: a host must not restart the web for those.
    app: Flask = create_app(settings.with_overrides(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/tend",
        redis_url=f"redis://127.0.0.1:{closed_port()}/0",
    ))
    assert health(app.test_client(), "?check=web") == (200, {"status": "ok", "check": "web"})
    assert health(app.test_client())[0] == 503


def test_the_backlog_threshold_is_read_from_the_environment():
    assert Settings.from_env({}).health_max_backlog_seconds == 300
    read = Settings.from_env({"HEALTH_MAX_BACKLOG_SECONDS": "900"})
    assert read.health_max_backlog_seconds == 900
