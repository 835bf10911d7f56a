"""The dispatcher's cost: claiming the due rows must not grow with the rows scheduled later."""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from bot.clock import now
from bot.delivery import outbox
from bot.tools.bench import fixtures
from bot.tools.bench.scale import TARGET_FLAT, Bench, say

_SCAN = re.compile(
    r"((?:Parallel )?(?:Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan|Bitmap Index Scan)"
    r"(?: Backward)?(?: using \S+)? on \S+)"
)


@dataclass
class ClaimCost:
    rows: int  # scheduled rows in the table
    due: int
    claimed: int
    runs_ms: list[float]
    plan: list[str]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)

    @property
    def scans(self) -> str:
        """The plan's scan nodes, e.g. 'Index Scan using ix_delivery_status_due on delivery'."""
        found: list[str] = []
        for line in self.plan:
            for node in _SCAN.findall(line):
                if node not in found:
                    found.append(node)
        return " + ".join(found) or "?"


def _vacuum_analyze(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE delivery"))


def _claim_statements(engine: Engine, limit: int) -> tuple[list[int], list[tuple[str, Any]]]:
    """Run claim_due once, capturing each statement (and its parameters) it sent."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        claimed = outbox.claim_due(engine=engine, limit=limit)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return claimed, captured


def _explain(engine: Engine, statements: list[tuple[str, Any]]) -> list[str]:
    """EXPLAIN (not ANALYZE: nothing runs) each statement claim_due sent, in order."""
    lines: list[str] = []
    with engine.connect() as connection:
        for number, (statement, parameters) in enumerate(statements, start=1):
            verb = statement.split(None, 1)[0].upper()
            lines.append(f"-- statement {number} ({verb})")
            rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars()
            lines.extend(rows)
        connection.rollback()
    return lines


def _reset(engine: Engine, ids: list[int]) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE delivery SET status = 'scheduled', claimed_at = NULL "
                "WHERE id = ANY(CAST(:ids AS integer[]))"
            ),
            {"ids": ids},
        )


def measure_sizes(
    engine: Engine, participant_ids: list[int], sizes: list[int], *, due: int, runs: int
) -> list[ClaimCost]:
    """Grow the outbox to each size in turn and time claim_due(limit=due) on it."""
    fixtures.delete_deliveries(engine)
    fixtures.add_due_events(
        engine, participant_ids[:due], due_at=now() - timedelta(minutes=1)
    )
    present = due
    results = []
    for size in sizes:
        fixtures.add_future_rows(engine, participant_ids, size - present)
        present = size
        _vacuum_analyze(engine)
        claimed, statements = _claim_statements(engine, due)  # also warms the caches
        plan = _explain(engine, statements)
        _reset(engine, claimed)
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            claimed = outbox.claim_due(engine=engine, limit=due)
            timings.append((time.perf_counter() - started) * 1000)
            _reset(engine, claimed)
        results.append(ClaimCost(size, due, len(claimed), timings, plan))
    fixtures.delete_deliveries(engine)
    return results


def run_section(bench: Bench, number: int) -> None:
    """Claim due rows among ever more scheduled ones: the cost must stay flat."""
    scale = bench.scale
    say(
        f"{number}. Dispatcher cost: claim_due(limit={scale.due_rows}) with {scale.due_rows} due "
        f"rows among N scheduled (median of {scale.dispatch_runs}, reset between runs)"
    )
    costs = measure_sizes(
        bench.engine, bench.ids, list(scale.dispatch_sizes), due=scale.due_rows,
        runs=scale.dispatch_runs,
    )
    for cost, key in zip(costs, ("10k", "100k", "1m"), strict=True):
        bench.figures[f"dispatch_ms_{key}"] = round(cost.median_ms, 2)
        bench.errors[f"dispatch_{key}"] = cost.due - cost.claimed
        say(
            f"   {cost.rows:>9,} rows: {cost.median_ms:7.2f} ms  "
            f"({1000 * cost.median_ms / max(cost.due, 1):.1f} us per message; "
            f"runs {', '.join(f'{t:.1f}' for t in cost.runs_ms)}; claimed {cost.claimed})  "
            f"{cost.scans}"
        )
    flat = costs[-1].median_ms / costs[0].median_ms if costs[0].median_ms else 0.0
    bench.figures.update(
        dispatch_ratio_1m_10k=round(flat, 2), dispatch_plan=costs[-1].scans,
        dispatch_table_rows=list(scale.dispatch_sizes),
    )
    say(f"   ratio largest/smallest: {flat:.2f}; plan at {costs[-1].rows:,} rows:")
    for line in costs[-1].plan:
        say(f"     {line if len(line) <= 150 else line[:147] + '...'}")
    bench.target("dispatch_flat", f"dispatcher cost flat (1M/10k <= {TARGET_FLAT}, no Seq Scan)",
                 f"{flat:.2f}", flat <= TARGET_FLAT and "Seq Scan" not in costs[-1].scans)
