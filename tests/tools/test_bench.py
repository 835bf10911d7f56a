"""`bot bench --quick`: the benchmark runs end to end at tiny sizes and ends with its figures.

A smoke run, not a timed test: it proves the command works, never how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import ROOT, SERVER_URL, TEST_REDIS_URL

KEYS = {
    "send_rate_1_worker", "send_rate_2_workers", "naive_rate", "ratio_vs_naive",
    "dispatch_ms_10k", "dispatch_ms_100k", "dispatch_ms_1m", "dispatch_ratio_1m_10k",
    "dispatch_plan", "inbound_rps", "inbound_p50_ms", "inbound_p99_ms", "worker_peak_rss_mb",
    "provider_alone_rps", "errors", "targets",
}


@pytest.fixture
def bench_database_url() -> Iterator[str]:
    """A benchmark database of this test run's own, dropped afterwards."""
    name = f"tend_bench_test_{os.getpid()}"
    admin = SERVER_URL.replace("+psycopg", "")
    yield SERVER_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_the_quick_benchmark_prints_every_figure_as_its_last_line(
    bench_database_url: str,
) -> None:
    env = {
        **os.environ, "BENCH_DATABASE_URL": bench_database_url, "BENCH_REDIS_URL": TEST_REDIS_URL,
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot.tools.cli", "bench", "--quick"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(figures) >= KEYS
    assert figures["quick"] is True
    assert figures["errors"] == 0, figures.get("errors_by_stage")
    assert figures["send_rate_1_worker"] > 0 and figures["naive_rate"] > 0
    assert "Seq Scan" not in figures["dispatch_plan"]
    assert set(figures["targets"].values()) <= {"PASS", "MISS"}
    assert "Targets" in result.stdout
