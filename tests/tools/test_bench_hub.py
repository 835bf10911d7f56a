"""`bot bench --only hub`: a hub evaluation and a send, with a week and with a year of history.

Not a timed test: it proves the section runs, prints its table and leaves nothing behind, and
that a year of history asks the database no more questions than a week does.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.store.models import Delivery, Participant
from bot.tools.bench import hub


def test_a_year_of_history_costs_the_hub_and_a_send_no_more_statements_than_a_week(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub, "RUNS", 2)
    lines: list[str] = []

    figures = hub.run_hub(engine, say=lines.append)

    assert figures["hub_history_rows"]["year"] > 30 * figures["hub_history_rows"]["week"]
    assert figures["hub_statements_year"] == figures["hub_statements_week"] > 0
    assert figures["send_statements_year"] == figures["send_statements_week"] > 0
    for key in ("hub_ms_week", "hub_ms_year", "hub_year_over_week", "send_year_over_week"):
        assert figures[key] > 0
    assert [line.split()[0] for line in lines[2:4]] == ["week", "year"]
    assert lines[-1].strip().startswith("ratio year/week")
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Participant)).one() == 0
        assert session.exec(select(func.count()).select_from(Delivery)).one() == 0
