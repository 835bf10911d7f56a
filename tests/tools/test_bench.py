"""`bot bench --quick`: the benchmark runs end to end at tiny sizes and ends with its figures.

A smoke run, not a timed test: it proves the command works, never how fast anything is.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import click
import psycopg
import pytest
import redis

from bot.tools.bench.stage import BenchError, bench_redis
from tests.conftest import ROOT, SERVER_URL, TEST_REDIS_URL

KEYS = {
    "send_rate_1_worker", "send_rate_2_workers", "naive_rate", "ratio_vs_naive",
    "bot_cpu_ms_per_message", "naive_cpu_ms_per_message", "cpu_ratio_vs_naive",
    "dispatch_ms_10k", "dispatch_ms_100k", "dispatch_ms_1m", "dispatch_ratio_1m_10k",
    "dispatch_plan", "inbound_rps", "inbound_p50_ms", "inbound_p99_ms",
    "inbound_cpu_ms_per_request", "worker_peak_rss_mb", "provider_alone_rps",
    "simulation_seconds", "simulation_statements_per_message", "scale_drain_seconds",
    "scale_worker_shares", "scale_max_sends_in_a_second", "errors", "targets",
}


@pytest.fixture
def bench_database_url() -> Iterator[str]:
    """A benchmark database of this test run's own, dropped afterwards."""
    name = f"tend_bench_test_{os.getpid()}"
    admin = SERVER_URL.replace("+psycopg", "")
    yield SERVER_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def bench(database_url: str, *arguments: str) -> tuple[str, dict]:
    """Run `bot bench` with `arguments`; its output and the figures of its last line."""
    env = {**os.environ, "BENCH_DATABASE_URL": database_url, "BENCH_REDIS_URL": TEST_REDIS_URL}
    result = subprocess.run(
        [sys.executable, "-m", "bot.tools.cli", "bench", *arguments],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(result.stdout.strip().splitlines()[-1])


def test_the_quick_benchmark_prints_every_figure_as_its_last_line(
    bench_database_url: str,
) -> None:
    stdout, figures = bench(bench_database_url, "--quick")
    assert set(figures) >= KEYS
    assert figures["quick"] is True
    assert figures["errors"] == 0, figures.get("errors_by_stage")
    assert figures["send_rate_1_worker"] > 0 and figures["naive_rate"] > 0
    assert "Seq Scan" not in figures["dispatch_plan"]
    assert set(figures["targets"].values()) <= {"PASS", "MISS"}
    assert "Targets" in stdout
    assert "CPU ms per message" in stdout and "CPU ms per request" in stdout
    assert figures["bot_cpu_ms_per_message"] > 0 and figures["naive_cpu_ms_per_message"] > 0
    # The scale-out rehearsal: a worker SIGKILLed and Redis restarted midway, yet every one of
    # its 300 messages went out exactly once, within the rate, and the host restarted worker1.
    assert (figures["scale_sent_once"], figures["scale_sent_twice"],
            figures["scale_missing"]) == (300, 0, 0)
    assert figures["targets"]["scale_exactly_once"] == "PASS"
    # One rate shared by the three workers, not one each (which would be three times it). How
    # many calls land in one second at the provider also varies with each call's latency on
    # the machine: that is the bench's figure (`scale_rate`), not something to assert here.
    limit = figures["scale_rate_limit"]
    assert figures["scale_rate_per_second"] <= 1.05 * limit  # an average over the drain
    assert figures["scale_max_sends_in_a_second_steady"] < 1.5 * limit
    assert figures["scale_restarts"].get("worker1", 0) >= 1
    assert "Scale-out rehearsal" in stdout


def test_only_the_sections_asked_for_run_and_the_study_takes_its_size_from_the_options(
    bench_database_url: str,
) -> None:
    stdout, figures = bench(
        bench_database_url, "--quick", "--only", "simulation", "--participants", "3",
        "--days", "2",
    )
    assert figures["sections"] == ["simulation"]
    assert "send_rate_1_worker" not in figures and "inbound_rps" not in figures
    assert figures["simulation"]["participants"] == 3
    assert figures["simulation_seconds"] > 0
    assert figures["errors"] == 0, figures.get("errors_by_stage")


def test_an_unknown_section_is_refused_with_the_names_to_choose_from() -> None:
    from bot.tools.bench import run_benchmark

    names = "delivery, dispatch, inbound, hub, simulation, scale"
    with pytest.raises(click.BadParameter, match=names):
        run_benchmark(quick=True, only=["delivery", "postman"])


@pytest.fixture
def held_db() -> Iterator[tuple[redis.Redis, str]]:
    """This test run's Redis db and the key that marks it held; the hold is put back after."""
    index = TEST_REDIS_URL.rsplit("/", 1)[1]
    base = redis.Redis.from_url(TEST_REDIS_URL.rsplit("/", 1)[0] + "/0")
    key = f"tend:test-run:{index}"
    ours = base.get(key)
    yield base, key
    base.set(key, ours or str(os.getpid()), ex=3600)


def _dead_pid() -> int:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_a_benchmark_killed_before_it_let_go_of_its_redis_db_does_not_block_the_next(held_db):
    base, key = held_db
    base.set(key, f"bench {_dead_pid()} on {socket.gethostname()}", ex=3600)
    bench_redis(TEST_REDIS_URL, explicit=False)
    assert base.get(key) == f"bench {os.getpid()} on {socket.gethostname()}".encode()


@pytest.mark.parametrize("holder", [
    "a test run",  # a test run's hold: its pid alone
    "a live benchmark",
    "another machine's benchmark",
])
def test_a_redis_db_held_by_a_live_run_is_refused_with_its_holder(held_db, holder):
    base, key = held_db
    value = {
        "a test run": str(os.getpid()),
        "a live benchmark": f"bench {os.getpid()} on {socket.gethostname()}",
        "another machine's benchmark": f"bench {_dead_pid()} on another-host",
    }[holder]
    base.set(key, value, ex=3600)
    with pytest.raises(BenchError, match=f"is held by b'{value}'"):
        bench_redis(TEST_REDIS_URL, explicit=False)
    assert base.get(key) == value.encode()
