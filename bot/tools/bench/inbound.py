"""Inbound webhooks under gunicorn: signed texts from enrolled participants, many at once."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from bot.settings import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, SANDBOX_FROM_NUMBER
from bot.tools.bench import fixtures
from bot.tools.bench.stage import cpu_seconds, cpu_spent

CpuGroups = Callable[[], dict[str, list[int] | str]]
# The CPU groups that are the bot's own cost: the web processes and the database. The client
# (this process, driving the requests) shares the cores but is not the bot.
BOT_GROUPS = ("web", "postgres")


@dataclass
class InboundRun:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    cpu: dict[str, float] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def cpu_ms_per_request(self, *groups: str) -> float:
        """CPU milliseconds the named groups (the bot's, BOT_GROUPS, by default) spent per
        request."""
        spent = sum(self.cpu.get(group, 0.0) for group in groups or BOT_GROUPS)
        return 1000 * spent / self.requests if self.requests else 0.0

    def figures(self) -> dict[str, float]:
        """The run's figures under the names of `bot bench`'s JSON line."""
        return {
            "inbound_rps": round(self.rate, 1),
            "inbound_p50_ms": round(self.percentile(0.50), 1),
            "inbound_p99_ms": round(self.percentile(0.99), 1),
            "inbound_cpu_ms_per_request": round(self.cpu_ms_per_request(), 3),
            "inbound_web_cpu_ms_per_request": round(self.cpu_ms_per_request("web"), 3),
            "inbound_postgres_cpu_ms_per_request": round(self.cpu_ms_per_request("postgres"), 3),
        }

    def percentile(self, fraction: float) -> float:
        if not self.latencies_ms:
            return 0.0
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[
            round(fraction * 100) - 1
        ]


def text_for(index: int) -> str:
    """Most participants answer the evening question; every fifth writes something else."""
    return "hello" if index % 5 == 0 else "4"


def signed_requests(web_url: str, indexes: range, sid_prefix: str) -> list[tuple[bytes, str]]:
    """(form body, X-Twilio-Signature) for one text from each participant in `indexes`."""
    url = f"{web_url}/twilio/sms"
    validator = RequestValidator(SANDBOX_AUTH_TOKEN)
    prepared = []
    for index in indexes:
        sid = f"SM{sid_prefix}{index:0{32 - len(sid_prefix)}x}"
        params = {
            "ToCountry": "US", "ToState": "MA", "SmsMessageSid": sid, "NumMedia": "0",
            "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "MA",
            "SmsStatus": "received", "FromCity": "", "Body": text_for(index),
            "FromCountry": "US", "To": SANDBOX_FROM_NUMBER, "ToZip": "", "NumSegments": "1",
            "MessageSid": sid, "AccountSid": SANDBOX_ACCOUNT_SID,
            "From": fixtures.phone(index), "ApiVersion": "2010-04-01",
        }
        prepared.append((urlencode(params).encode(), validator.compute_signature(url, params)))
    return prepared


def post_all(
    web_url: str, prepared: list[tuple[bytes, str]], concurrency: int, groups: CpuGroups | None
) -> InboundRun:
    """POST every prepared webhook with `concurrency` connections; time each one."""
    import aiohttp

    url = f"{web_url}/twilio/sms"
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def drive() -> float:
        pending = iter(prepared)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=15),  # Twilio gives up after 15 s
        ) as session:

            async def one_client() -> None:
                for body, signature in pending:
                    headers = {
                        "X-Twilio-Signature": signature,
                        "Content-Type": "application/x-www-form-urlencoded",
                    }
                    started = time.perf_counter()
                    try:
                        async with session.post(url, data=body, headers=headers) as response:
                            await response.read()
                            status = response.status
                    except (TimeoutError, aiohttp.ClientError):
                        status = 0
                    latencies.append((time.perf_counter() - started) * 1000)
                    statuses[status] = statuses.get(status, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(one_client() for _ in range(concurrency)))
            return time.perf_counter() - started

    before = cpu_seconds(groups()) if groups else {}
    seconds = asyncio.run(drive())
    spent = cpu_spent(before, cpu_seconds(groups())) if groups else {}
    errors = sum(count for status, count in statuses.items() if status != 200)
    return InboundRun(len(prepared), errors, seconds, latencies, spent, statuses)
