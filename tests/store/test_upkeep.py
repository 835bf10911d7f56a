"""Table statistics follow a table's growth as autovacuum's would, where autovacuum does not
keep up (a simulation writes weeks of history in seconds) or is off."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bot.store.db import create_tables, get_engine
from bot.store.upkeep import analyze_grown

GROW = """
INSERT INTO participant (phone, program, timezone, enrolled_at, enrolled_via, attributes)
SELECT '+1415700' || lpad(p::text, 4, '0'), 'daily-checkin', 'UTC', now(), 'import', '{}'
FROM generate_series(1, 500) AS p
"""


def _grow(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(GROW))
        # The counters reach the statistics views when this transaction ends, not a second later.
        connection.execute(text("SELECT pg_stat_force_next_flush()"))


def _analyzed_rows(engine: Engine) -> float:
    """How many rows the planner believes participant holds."""
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'participant'")
        ).scalar_one()


def test_a_table_that_grew_past_autovacuums_threshold_is_analyzed_once(engine: Engine) -> None:
    analyze_grown(engine)  # whatever earlier tests left behind
    _grow(engine)

    assert "participant" in analyze_grown(engine)
    assert _analyzed_rows(engine) == 500  # the planner now knows the table's size

    assert "participant" not in analyze_grown(engine)  # nothing changed since


def test_sqlite_needs_no_upkeep(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'tend.sqlite3'}")
    create_tables(engine)

    assert analyze_grown(engine) == []
