"""What a benchmark run measures, at which sizes, against which targets, and what it found."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import click
from sqlalchemy.engine import Engine

from bot.tools.bench.stage import Stage

TARGET_SEND_RATE = 1000.0
TARGET_RATIO = 10.0
TARGET_BOT_CPU_MS = 0.8  # workers + dispatcher + Postgres + Redis, per message
TARGET_CPU_RATIO = 8.0  # the naive design's CPU per message over ours, in the same run
TARGET_FLAT = 1.5  # claiming among 1M rows may cost at most this many times claiming among 10k
TARGET_INBOUND_RPS = 500.0
TARGET_INBOUND_P99_MS = 50.0
TARGET_INBOUND_CPU_MS = 2.0  # web + Postgres, per request
TARGET_SIMULATION_SECONDS = 60.0  # 1,000 participants x 56 days


@dataclass(frozen=True)
class Scale:
    messages: int = 5000
    naive_messages: int = 5000
    warmup: int = 200
    provider_probe: int = 3000
    dispatch_sizes: tuple[int, int, int] = (10_000, 100_000, 1_000_000)
    due_rows: int = 1000
    dispatch_runs: int = 5
    inbound_requests: int = 5000
    inbound_warmup: int = 200
    concurrency: int = 8  # client connections for the provider probe and the webhooks
    lead: float = 1.5  # seconds between writing a run's rows and the moment they fall due
    sim_participants: int = 1000  # the simulated study: participants x days
    sim_days: int = 56
    quick: bool = False

    @property
    def participants(self) -> int:
        return max(
            self.messages, self.naive_messages, self.warmup, self.due_rows,
            self.inbound_requests + self.inbound_warmup,
        )


QUICK = Scale(
    messages=60, naive_messages=60, warmup=0, provider_probe=60,
    dispatch_sizes=(1_000, 2_000, 5_000), due_rows=100, dispatch_runs=3,
    inbound_requests=60, inbound_warmup=0, lead=0.3, sim_participants=20, sim_days=14,
    quick=True,
)


@dataclass
class Bench:
    """One benchmark run: where it runs, what it found, and which targets it checked."""

    stage: Stage
    engine: Engine
    connection: Any  # the benchmark's Redis db
    scale: Scale
    ids: list[int] = field(default_factory=list)  # enrolled participants, in order
    figures: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    targets: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def target(self, key: str, label: str, value: str, ok: bool) -> None:
        """A target this run checked: its JSON key, what it asks, what was measured."""
        self.targets.append((key, label, value, ok))


def say(text: str = "") -> None:
    click.echo(text)
    sys.stdout.flush()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def cpu_line(cpu: dict[str, float], per: int, seconds: float, unit: str) -> str:
    """CPU milliseconds each part spent per message (or request), and how busy the cores were."""
    parts = [f"{name} {1000 * spent / per:.2f}" for name, spent in cpu.items() if per]
    busy = sum(cpu.values()) / (seconds * (os.cpu_count() or 1)) if seconds > 0 else 0.0
    return f"      CPU ms per {unit}: {', '.join(parts)}  (all cores {100 * busy:.0f}% busy)"
