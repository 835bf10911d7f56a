"""The design Tend is compared with: one RQ job per message, scheduled with `enqueue_at`.

This is how Twilio's appointment-reminders sample works: rq's scheduler holds the job until its
time, and the job loads its row, builds a fresh twilio Client, sends, and records the sid. It
does the same rendering Tend does (so only the pipeline differs) and none of Tend's checks
(consent, quiet hours, daily cap, claims), so the comparison flatters it, if anything.

`python -m bot.tools.bench.naive` runs one such worker (SimpleWorker, with the scheduler).
"""

from __future__ import annotations

from datetime import datetime

from rq import Queue, SimpleWorker
from sqlalchemy import update
from sqlmodel import Session, col
from twilio.rest import Client

from bot.care.context import message_context
from bot.care.narrative import render
from bot.care.programs import programs_in
from bot.clock import now
from bot.delivery.queues import connect_redis
from bot.settings import Settings
from bot.store.db import get_engine
from bot.store.models import Delivery, DeliveryStatus, Participant


def send_one(delivery_id: int) -> str | None:
    """Load the row, render, send with a new Client, store the sid."""
    settings = Settings.from_env()
    engine = get_engine(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            return None
        participant = session.get(Participant, delivery.participant_id)
        assert participant is not None
        program = programs_in(settings.narratives_dir)[participant.program]
        body = render(
            program,
            delivery.template or "",
            message_context(
                session=session, participant=participant, program=program, delivery=delivery
            ),
        )
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token)
    client.api.base_url = settings.twilio_api_base_url
    message = client.messages.create(to=participant.phone, from_=settings.twilio_from_number,
                                     body=body)
    with Session(engine) as session:
        session.exec(
            update(Delivery)
            .where(col(Delivery.id) == delivery_id)
            .values(
                status=DeliveryStatus.ACCEPTED, provider_sid=message.sid, body=body, sent_at=now()
            )
        )
        session.commit()
    return message.sid


def schedule(queue: Queue, ids: list[int], at: datetime) -> None:
    """One scheduled job per delivery, as the sample schedules one per appointment."""
    for delivery_id in ids:
        queue.enqueue_at(at, send_one, delivery_id)


def main() -> None:
    settings = Settings.from_env()
    connection = connect_redis(settings)
    queue = Queue(settings.queue_name, connection=connection)
    SimpleWorker([queue], connection=connection).work(with_scheduler=True)


if __name__ == "__main__":
    main()
