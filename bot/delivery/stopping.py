"""A worker told to stop (a host restarting it): the batch in hand ends before its next
provider call, and what it claimed but never handed over goes back to the outbox.

A host gives a process about 30 seconds between SIGTERM and SIGKILL. A batch of 50 at one
message a second would not finish in that time, so the batch checks the stop between
messages, and the wait for a rate slot ends as soon as the stop comes. A row whose provider
call is in flight is finished and recorded, never released: it may have gone out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import case, delete, update
from sqlmodel import Session, col

from bot.clock import now
from bot.delivery.ratelimit import Pacer, RateLimiter, Slots
from bot.store.models import Delivery, DeliveryStatus, WorkerHeartbeat

# A batch reserves its rate slots this far ahead at most: a batch stopped midway leaves at
# most this much of the sender's rate unused, so the next worker sends almost at once.
RESERVE_AHEAD = timedelta(seconds=2)


class Turns:
    """A batch's turns at the provider, one per message, each at its rate slot; a turn taken
    after the worker was told to stop is refused, and a wait for a slot ends at the stop."""

    def __init__(self, limiter: RateLimiter | Pacer | None, count: int,
                 stopping: threading.Event):
        self.limiter, self.left, self.stopping = limiter, count, stopping
        self._slots: Slots | None = None
        self._lock = threading.Lock()  # one lane at a time takes a slot: they come in order

    def _wait_ahead(self) -> float:
        """Roughly how long a lane arriving now waits for its slot."""
        slots = self._slots
        if slots is None or not slots.left():
            return 0.0
        return slots.due_in() + (slots.interval if self._lock.locked() else 0.0)

    def take(self, idle: Callable[[], None], longer_than: timedelta) -> bool:
        """Wait for the next message's slot, calling `idle` first when the wait will be longer
        than `longer_than`; False when the worker was told to stop first."""
        if not isinstance(self.limiter, RateLimiter):
            if self.stopping.is_set():
                return False
            if self.limiter is not None:
                self.limiter.wait()
            return not self.stopping.is_set()
        if self._wait_ahead() > longer_than.total_seconds():
            idle()
        with self._lock:
            if self.stopping.is_set():
                return False
            while True:
                if self._slots is None or not self._slots.left():
                    ahead = int(RESERVE_AHEAD / timedelta(microseconds=self.limiter.interval_us))
                    self._slots = self.limiter.reserve(max(1, min(self.left, ahead)))
                    if self._slots.due_in() > longer_than.total_seconds():
                        idle()
                # The slot stays reserved if the stop comes first: the rate is never exceeded.
                if self.stopping.wait(self._slots.due_in()):
                    return False
                if self._slots.wait() is not None:
                    break
                # Every slot left was missed (the lanes were all at the provider): reserve anew.
            self.left -= 1
            return True


def release_unsent(*, session: Session, ids: list[int], token: str) -> list[int]:
    """Put rows claimed under `token` and never handed to the provider back in the outbox, due
    now, unclaimed, the attempt not counted; one statement. Returns the ids released."""
    if not ids:
        return []
    attempts = col(Delivery.attempts)
    released = session.exec(
        update(Delivery)
        .where(col(Delivery.id).in_(ids), col(Delivery.status) == DeliveryStatus.SENDING,
               col(Delivery.claim_token) == token)
        .values(status=DeliveryStatus.SCHEDULED, due_at=now(), claimed_at=None,
                claim_token=None, claimed_by=None,
                attempts=case((attempts > 0, attempts - 1), else_=0))
        .returning(Delivery.id)
    )
    return sorted(released.scalars())


def release_queued(*, session: Session, ids: list[int]) -> None:
    """Rows marked queued whose job never reached the queue: back to the outbox as they were."""
    if ids:
        session.exec(
            update(Delivery)
            .where(col(Delivery.id).in_(ids), col(Delivery.status) == DeliveryStatus.QUEUED)
            .values(status=DeliveryStatus.SCHEDULED, claimed_at=None)
        )


def retire(*, session: Session, worker_id: str) -> None:
    """A worker that exits says so: a row it still left in sending (a provider call that timed
    out) is reconciled at the dispatcher's next tick, not once its heartbeat is found stale."""
    session.exec(
        delete(WorkerHeartbeat).where(col(WorkerHeartbeat.worker_id) == worker_id)
    )
