"""The per-sender send rate holds across workers: each send waits for its own slot."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import redis

from bot.delivery import ratelimit
from bot.delivery.ratelimit import RateLimiter
from bot.delivery.stopping import Turns
from tests.conftest import TEST_REDIS_URL


def test_two_workers_together_never_exceed_the_senders_rate(redis_conn):
    # Two worker processes share one long code; each has its own connection and threads.
    per_second = 20.0
    workers = [
        RateLimiter(redis.Redis.from_url(TEST_REDIS_URL), "+15005550006", per_second)
        for _ in range(2)
    ]
    sent_at: list[float] = []
    lock = threading.Lock()

    def send(limiter: RateLimiter) -> None:
        for _ in range(10):
            limiter.wait()
            with lock:
                sent_at.append(time.monotonic())

    threads = [threading.Thread(target=send, args=(w,)) for w in workers for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent_at.sort()
    assert len(sent_at) == 40
    # 40 sends at 20 per second span at least 39 intervals, whatever the threads did.
    assert sent_at[-1] - sent_at[0] >= 39 / per_second - 0.05
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:], strict=False)]
    assert sum(gap < 0.5 / per_second for gap in gaps) <= 2  # no bursts beyond scheduling jitter


def test_another_sender_has_its_own_rate(redis_conn):
    long_code = RateLimiter(redis_conn, "+15005550006", 1.0)
    service = RateLimiter(redis_conn, "MG0000", 1.0)
    assert long_code.wait() == 0
    assert service.wait() == 0  # not held back by the other sender's slot
    assert long_code.wait() > 0.5


def test_a_batch_reserves_all_its_slots_at_once_and_the_next_batch_queues_behind_it(redis_conn):
    # Two workers' batches of five at ten per second: one Redis call each, slots never shared.
    first_worker = RateLimiter(redis.Redis.from_url(TEST_REDIS_URL), "+15005550006", 10.0)
    second_worker = RateLimiter(redis.Redis.from_url(TEST_REDIS_URL), "+15005550006", 10.0)
    first = first_worker.reserve(5)
    second = second_worker.reserve(5)
    assert first.interval == second.interval == 0.1
    # The second batch's first slot comes one interval after the first batch's fifth.
    assert abs((second.first - first.first) - 5 * 0.1) < 0.05
    assert first.due_in() <= 0.05  # the first batch may start at once


class _Clock:
    """The monotonic clock and sleep the rate limiter reads, moved by the test alone."""

    CLOCK_MONOTONIC = time.CLOCK_MONOTONIC

    def __init__(self) -> None:
        self.now = 1000.0

    def clock_gettime(self, _which: int) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_late_send_gives_up_the_slots_it_missed_instead_of_catching_up(redis_conn, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(ratelimit, "time", clock)
    slots = RateLimiter(redis_conn, "+15005550006", 100.0).reserve(10)  # 10 ms apart
    # Every sending thread was busy at the provider for five and a half slots.
    clock.now = slots.first + 0.055
    assert slots.wait() == 0.0  # the slot due 50 ms in, at once; the five before it are gone
    assert slots.left() == 4
    assert slots.wait() == pytest.approx(0.005)  # the next waits for its own slot, 60 ms in
    clock.now += 1.0  # held up past every slot left
    assert slots.wait() is None
    assert slots.left() == 0


def test_a_batch_whose_slots_all_passed_reserves_new_ones(redis_conn, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(ratelimit, "time", clock)
    limiter = RateLimiter(redis_conn, "+15005550006", 100.0)
    reservations: list[int] = []
    reserve = limiter.reserve

    def counted(count: int) -> ratelimit.Slots:
        reservations.append(count)
        return reserve(count)

    monkeypatch.setattr(limiter, "reserve", counted)
    turns = Turns(limiter, 3, threading.Event())
    assert turns.take(lambda: None, timedelta(seconds=1))
    clock.now += 5.0  # the batch's other two slots passed long ago
    assert turns.take(lambda: None, timedelta(seconds=1))
    assert turns.take(lambda: None, timedelta(seconds=1))
    assert reservations == [3, 2]  # the missed slots given up, the two sends left reserved anew


def test_at_a_rate_faster_than_the_sends_no_slot_counts_as_missed(redis_conn):
    # No carrier limit (a million a second): slots a microsecond apart are never "missed".
    slots = RateLimiter(redis_conn, "+15005550006", 1_000_000.0).reserve(50)
    waited = [slots.wait() for _ in range(50)]
    assert None not in waited and slots.left() == 0
