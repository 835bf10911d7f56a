"""The zero-setup defaults: a SQLite file and embedded Redis, nothing else running."""

from __future__ import annotations

from pathlib import Path

import pytest
from rq import SimpleWorker
from sqlmodel import Session, select

from bot import create_app
from bot.delivery.queues import connect_redis, delivery_queue
from bot.sandbox import create_sandbox_app, sandbox_of
from bot.settings import Settings
from bot.store.db import get_engine
from bot.store.migrate import upgrade
from bot.store.models import Delivery, DeliveryStatus, Participant
from tests.conftest import ROOT, LiveServer, _placeholder
from worker import context, dispatcher

# Someone trying the bot on a laptop with no accounts and no servers.
CURIOUS = "+14155550166"


@pytest.fixture
def embedded(tmp_path: Path):
    bot_server, sandbox_server = LiveServer(_placeholder), LiveServer(_placeholder)
    settings = Settings.from_env(
        {},
        instance_dir=tmp_path / "instance",
        narratives_dir=ROOT / "narratives",
        public_base_url=bot_server.url,
        twilio_api_base_url=sandbox_server.url,
        quiet_hours_start=Settings().quiet_hours_end,  # any hour will do here
    )
    assert settings.database_url.startswith("sqlite:///")
    assert settings.uses_embedded_redis
    upgrade(settings)  # the same migrations a deployment runs
    bot_server.server.app = create_app(settings)
    sandbox_app = create_sandbox_app(
        account_sid=settings.twilio_account_sid, auth_token=settings.twilio_auth_token,
        bot_inbound_url=f"{bot_server.url}/twilio/sms", bot_number=settings.twilio_from_number,
        public_url=sandbox_server.url, callback_delay=0.01,
    )
    sandbox_server.server.app = sandbox_app
    ctx = context.use(settings)
    yield settings, sandbox_app, sandbox_server, ctx
    bot_server.stop()
    sandbox_server.stop()
    sandbox_of(sandbox_app).close()
    ctx.redis.shutdown()


def test_the_bot_works_end_to_end_on_sqlite_and_embedded_redis(embedded):
    import requests

    settings, sandbox_app, sandbox_server, ctx = embedded
    joined = requests.post(
        f"{sandbox_server.url}/sandbox/api/inbound", json={"from": CURIOUS, "body": "join"},
        timeout=20,
    )
    assert joined.status_code == 200, joined.text
    engine = get_engine(settings.database_url)
    with Session(engine) as session:
        participant = session.exec(select(Participant)).one()
        # Make the first daily event due now, as if the next day had come.
        first = session.exec(
            select(Delivery).where(Delivery.event_key == "daily_tip#1")
        ).one()
        first.due_at = participant.enrolled_at
        session.add(first)
        session.commit()
    redis = connect_redis(settings)
    queue = delivery_queue(settings, redis)
    assert dispatcher.tick(engine=engine, queue=queue, settings=settings).due == 1
    SimpleWorker([queue], connection=redis).work(burst=True)
    bodies = [m.body for m in sandbox_of(sandbox_app).store.conversation(CURIOUS)]
    assert bodies[0] == "join"
    assert "Welcome to Daily Check-in" in bodies[1]
    assert bodies[2].startswith("Day 1 of 7:")
    with Session(engine) as session:
        sent = session.exec(select(Delivery).where(Delivery.event_key == "daily_tip#1")).one()
        assert sent.status in (DeliveryStatus.ACCEPTED, DeliveryStatus.SENT,
                               DeliveryStatus.DELIVERED)
