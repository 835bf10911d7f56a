"""A per-sender send rate shared by every worker: sends reserve their slots in Redis.

A batch reserves the slots of its next sends, at most two seconds of them, in one call
(`RateLimiter.reserve`, see bot.delivery.stopping), then each send waits for its own; slots a
batch does not use (a row cancelled at the send gate, a worker told to stop) stay unused, so
the rate is not exceeded, only sometimes not reached. A send that comes late for its slot
(every sending thread was busy with the provider), by more than one interval and more than
`LATE`, takes the latest slot already due and gives up the ones it missed: late sends never go
out back to back to catch up. So every send starts less than max(interval, LATE) after a slot
of its own, and no second holds more sends than the rate and one (above 50 a second, than
the rate and 2 %).
Should Redis lose its data while slots are reserved, slots handed out anew may overlap them
for those two seconds per worker.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

# How late a send may start for its slot (or one interval, where that is longer) before the
# slots it missed are given up: at 100 a second, at most two slots are caught up.
LATE = 0.02

# Reserve `count` slots `interval` apart, the first at least `interval` after the last slot
# anyone reserved; Redis's clock is the one clock all workers agree on. Returns how many
# microseconds the caller must wait for its first slot.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local count = tonumber(ARGV[2] or '1')
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = math.max(now, last + interval)
local last_slot = first + (count - 1) * interval
redis.call('SET', KEYS[1], last_slot, 'PX', 60000 + math.ceil((last_slot - now) / 1000))
return first - now
"""


def _monotonic() -> float:
    """The system's monotonic clock, read directly: slots are real time, whatever clock a
    caller has frozen or moved (freezegun fakes `time.monotonic` for some threads only)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class Pacer(Protocol):
    """Whatever paces sends: `wait()` blocks until the next send may go."""

    def wait(self) -> float: ...


class Slots:
    """Slots reserved for one batch, `interval` seconds apart from `first` (monotonic clock);
    each `wait()` takes the next one, from any thread."""

    def __init__(self, first: float, interval: float, count: int):
        self.first, self.interval, self.count = first, interval, count
        self._taken = 0
        self._lock = threading.Lock()

    def due_in(self) -> float:
        """Seconds until the next slot not yet taken (0 when it is already due)."""
        with self._lock:
            index = self._taken
        return max(self.first + index * self.interval - _monotonic(), 0.0)

    def left(self) -> int:
        """Slots neither taken nor given up."""
        with self._lock:
            return self.count - self._taken

    def wait(self) -> float | None:
        """Block until the next reserved slot; returns the seconds waited, or None when every
        slot left was missed (they are given up: reserve anew)."""
        with self._lock:
            index = self._taken
            behind = _monotonic() - (self.first + index * self.interval)
            if behind > max(self.interval, LATE):
                # Late: take the latest slot already due, give up the ones before it.
                index += int(behind / self.interval)
            if index >= self.count:
                self._taken = self.count
                return None
            self._taken = index + 1
        delay = self.first + index * self.interval - _monotonic()
        if delay > 0:
            time.sleep(delay)
            return delay
        return 0.0


class RateLimiter:
    """At most `per_second` sends per sender across all processes sharing `connection`."""

    def __init__(self, connection: redis.Redis, sender: str, per_second: float):
        self.key = f"tend:rate:{sender}"
        self.interval_us = max(int(1_000_000 / per_second), 1)
        self._reserve = connection.register_script(_RESERVE)

    def reserve(self, count: int) -> Slots:
        """Reserve the slots of `count` sends in one round trip."""
        delay_us = int(self._reserve(keys=[self.key], args=[self.interval_us, max(count, 1)]))
        return Slots(_monotonic() + delay_us / 1_000_000, self.interval_us / 1_000_000, count)

    def wait(self) -> float:
        """Block until one send's slot; returns the seconds waited."""
        while (waited := self.reserve(1).wait()) is None:
            continue  # this thread was held up past its slot: take a new one
        return waited
