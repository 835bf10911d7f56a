"""RQ jobs. They take ids, reload rows, and return quietly when the work is gone or done."""

from __future__ import annotations

import logging

from bot.logs import redacted_failures
from worker import context

log = logging.getLogger(__name__)


@redacted_failures
def send_deliveries(delivery_ids: list[int]) -> dict[str, int]:
    """Send the claimed deliveries `delivery_ids` (skipping any no longer queued)."""
    ctx = context.current()
    sender = ctx.batch_sender
    sender.programs = ctx.programs()
    outcome = sender.send_batch(delivery_ids)
    summary = {name: len(ids) for name, ids in vars(outcome).items() if ids}
    log.info("batch of %d: %s", len(delivery_ids), summary)
    return summary


@redacted_failures
def reconcile_delivery(delivery_id: int) -> str:
    """Settle a delivery a worker left in sending: found at the provider, or sent again."""
    return context.current().batch_sender.reconcile(delivery_id)


@redacted_failures
def evaluate_participants(participant_ids: list[int]) -> dict[str, int]:
    """The hub's evaluation of each participant (a micro intervention ended, the periodic
    evaluation, a state answer, a CHECKIN)."""
    from bot.care import hub

    ctx = context.current()
    programs = ctx.programs()
    summary: dict[str, int] = {}
    for participant_id in participant_ids:
        what = hub.evaluate_participant(
            engine=ctx.engine, programs=programs, participant_id=participant_id
        )
        key = what.split(" ")[0]
        summary[key] = summary.get(key, 0) + 1
    log.info("hub evaluated %d: %s", len(participant_ids), summary)
    return summary


@redacted_failures
def import_participants(run_id: str, start: int = 0) -> str:
    """Enroll the next rows of a CSV file uploaded in the console, then queue the rest behind
    the sends waiting meanwhile (a long file would otherwise hold them all up)."""
    from bot.delivery.queues import delivery_queue
    from bot.participants import importing
    from bot.people import audit

    ctx = context.current()
    following = importing.run_chunk(connection=ctx.redis, engine=ctx.engine,
                                    programs=ctx.programs(), run_id=run_id, start=start,
                                    audit=audit.record)
    if following is None:
        return "finished"
    importing.queue_chunk(delivery_queue(ctx.settings, ctx.redis), run_id, following)
    return f"{following} rows done, the rest queued"
