"""Table statistics kept as fresh as autovacuum keeps them, where nothing else does.

PostgreSQL's planner chooses index or sequential scans from each table's statistics, which
autovacuum's ANALYZE refreshes once a table has changed by more than 50 rows plus a tenth of
its size. A server with autovacuum off (some development machines), or a run too short for
autovacuum's one-minute rounds to keep up (a simulation writes weeks of history in seconds),
plans every statement as if the tables were still as empty as they started: sequential scans
whose cost grows with the history. `analyze_grown` applies autovacuum's own threshold and
analyzes the tables that crossed it.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

# autovacuum_analyze_threshold and autovacuum_analyze_scale_factor, PostgreSQL's defaults.
ANALYZE_THRESHOLD = 50
ANALYZE_SCALE_FACTOR = 0.1

_GROWN = text(
    "SELECT relname FROM pg_stat_user_tables "
    "WHERE schemaname = current_schema() "
    "AND n_mod_since_analyze > :threshold + :scale * greatest(n_live_tup, 0) "
    "ORDER BY relname"
)


def analyze_grown(engine: Engine) -> list[str]:
    """ANALYZE each table changed by more than autovacuum's threshold since its statistics
    were last taken; the tables analyzed (none on SQLite, whose planner needs none here)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        grown = list(connection.execute(
            _GROWN, {"threshold": ANALYZE_THRESHOLD, "scale": ANALYZE_SCALE_FACTOR}
        ).scalars())
        for table in grown:
            connection.execute(text(f'ANALYZE "{table}"'))
    return grown
