"""The SQL outbox: claim due rows for the queue, and find claims that were left behind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from bot.clock import now
from bot.store.models import Delivery, DeliveryStatus, WorkerHeartbeat


def backoff(attempt: int) -> timedelta:
    """The wait before a delivery's next attempt: 30 s, 1 min, 2 min, ... capped at 30 min."""
    return timedelta(seconds=min(30 * 2 ** max(attempt - 1, 0), 1800))


@dataclass(frozen=True)
class Claims:
    due: list[int]  # newly due rows, now queued
    requeued: list[int]  # queued rows whose job is presumed lost (Redis flushed or restarted)
    stale: list[int]  # rows a worker began sending and never finished: reconcile first


def _claim(
    engine: Engine, where: list, values: dict, limit: int, order: Sequence[object]
) -> list[int]:
    """Pick up to `limit` ids, then one conditional UPDATE ... RETURNING, in one transaction.

    On PostgreSQL the pick is FOR UPDATE SKIP LOCKED, so racing dispatchers take disjoint rows.
    Two statements rather than `UPDATE ... WHERE id IN (subquery)`: there the planner may rescan
    the LIMIT ... SKIP LOCKED subquery for each row, each rescan skipping the rows this very
    UPDATE already changed, so the limit slides and the claim turns quadratic; or it hashes the
    whole table to join a few ids. A list of ids is found by primary key, whatever the table's size.
    """
    with engine.begin() as connection:
        chosen = select(Delivery.id).where(*where).order_by(*order).limit(limit)
        if connection.dialect.name == "postgresql":
            chosen = chosen.with_for_update(skip_locked=True)
        ids = list(connection.execute(chosen).scalars())
        if not ids:
            return []
        # `where` again: without row locks (SQLite) another process may have moved them.
        statement = (
            update(Delivery)
            .where(col(Delivery.id).in_(ids), *where)
            .values(**values)
            .returning(Delivery.id)
        )
        # RETURNING comes in whatever order the UPDATE met the rows: give them as picked.
        claimed = set(connection.execute(statement).scalars())
        return [row_id for row_id in ids if row_id in claimed]


def claim_due(*, engine: Engine, limit: int, moment: datetime | None = None) -> list[int]:
    """Mark up to `limit` due rows queued and return their ids (oldest due first; equal due
    times by id, so rows planned together go out in the order they were planned). The order is
    the one of ix_delivery_status_due (status, due_at, id): read off the index, never sorted."""
    moment = moment or now()
    return _claim(
        engine,
        [col(Delivery.status) == DeliveryStatus.SCHEDULED, col(Delivery.due_at) <= moment],
        {"status": DeliveryStatus.QUEUED, "claimed_at": moment},
        limit,
        (col(Delivery.due_at), col(Delivery.id)),
    )


def _reclaim(
    engine: Engine, status: DeliveryStatus, older_than: timedelta, limit: int, moment: datetime
) -> list[int]:
    """Rows left in `status` longer than `older_than`: stamp them claimed again, return them."""
    return _claim(
        engine,
        [col(Delivery.status) == status, col(Delivery.claimed_at) <= moment - older_than],
        {"claimed_at": moment},
        limit,
        (col(Delivery.claimed_at),),
    )


def claim_lost(
    *, engine: Engine, limit: int, requeue_after: timedelta, moment: datetime | None = None
) -> list[int]:
    """Queued rows no worker has taken for `requeue_after`: their job is gone; queue them again.

    A second job for a row whose first job still exists is harmless: only one worker can move
    the row from queued to sending.
    """
    return _reclaim(engine, DeliveryStatus.QUEUED, requeue_after, limit, moment or now())


DEAD_AFTER = timedelta(seconds=45)  # a sending worker that has not beaten for this long is dead


def claim_stale(
    *, engine: Engine, limit: int, claim_timeout: timedelta, moment: datetime | None = None,
    dead_after: timedelta = DEAD_AFTER,
) -> list[int]:
    """Rows stuck in sending (a worker died mid-call): hand them to a reconcile job.

    A row is stuck once its claim is older than `claim_timeout`, or at once when the worker
    that claimed it has stopped beating (killed). The claim token is cleared as the row is
    taken, so the send gate of a worker that was only slow refuses it; a row being sent right
    now is locked by that gate and skipped here (PostgreSQL).
    """
    moment = moment or now()
    alive = select(WorkerHeartbeat.worker_id).where(
        col(WorkerHeartbeat.beat_at) >= moment - dead_after
    )
    return _claim(
        engine,
        [
            col(Delivery.status) == DeliveryStatus.SENDING,
            or_(
                col(Delivery.claimed_at) <= moment - claim_timeout,
                and_(col(Delivery.claimed_by).is_not(None),
                     col(Delivery.claimed_by).not_in(alive)),
            ),
        ],
        {"claimed_at": moment, "claim_token": None},
        limit,
        (col(Delivery.claimed_at),),
    )
