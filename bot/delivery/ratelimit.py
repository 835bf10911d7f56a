"""A per-sender send rate shared by every worker: each send reserves the next slot in Redis."""

from __future__ import annotations

import time

import redis

# Reserve the next free slot at least `interval` after the last one; Redis's clock is the one
# clock all workers agree on. Returns how many microseconds the caller must wait.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, last + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], slot, 'PX', 60000)
return slot - now
"""


class RateLimiter:
    """At most `per_second` sends per sender across all processes sharing `connection`."""

    def __init__(self, connection: redis.Redis, sender: str, per_second: float):
        self.key = f"tend:rate:{sender}"
        self.interval_us = int(1_000_000 / per_second)
        self._reserve = connection.register_script(_RESERVE)

    def wait(self) -> float:
        """Block until this send's slot; returns the seconds waited."""
        delay = int(self._reserve(keys=[self.key], args=[self.interval_us])) / 1_000_000
        if delay > 0:
            time.sleep(delay)
        return delay
