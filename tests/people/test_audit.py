"""The audit log: appended, filtered, and never changed."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from bot.people import audit
from bot.store.support import AuditEvent, AuditLogError
from tests.conftest import ROOT
from tests.people.factories import add_team


def test_an_event_names_who_did_what_to_whom_and_from_where(session: Session) -> None:
    coach = add_team(session)["coach"]
    event = audit.record(session, staff=coach, action="view-number", participant_id=None,
                         address="203.0.113.7")
    session.commit()
    stored = session.get(AuditEvent, event.id)
    assert stored is not None
    assert (stored.actor, stored.staff_id, stored.action, stored.address) == (
        coach.email, coach.id, "view-number", "203.0.113.7")
    assert audit.record(session, staff=None, action="add-staff").actor == "system"


def test_the_log_refuses_to_be_changed_or_deleted(session: Session) -> None:
    coach = add_team(session)["coach"]
    event = audit.record(session, staff=coach, action="sign-in")
    session.commit()
    event.action = "nothing happened"
    with pytest.raises(AuditLogError, match="append-only"):
        session.commit()
    session.rollback()
    session.delete(session.get(AuditEvent, event.id))
    with pytest.raises(AuditLogError):
        session.commit()
    session.rollback()
    assert session.exec(select(AuditEvent.action)).all() == ["sign-in"]


def test_the_log_is_read_newest_first_by_person_action_and_page(session: Session) -> None:
    team = add_team(session)
    for index in range(5):
        audit.record(session, staff=team["coach"], action="view-history",
                     detail=str(index))
    audit.record(session, staff=team["admin"], action="sign-in")
    session.commit()
    coach = audit.events(session, staff_id=team["coach"].id, limit=3)
    assert [e.detail for e in coach] == ["4", "3", "2"]
    older = audit.events(session, staff_id=team["coach"].id, before_id=coach[-1].id)
    assert [e.detail for e in older] == ["1", "0"]
    assert [e.actor for e in audit.events(session, action="sign-in")] == [team["admin"].email]
    assert "view-number" in audit.actions_seen(session)


def test_no_code_updates_or_deletes_the_log_in_bulk() -> None:
    """The ORM refuses changes to an event; a bulk statement would bypass that, so none exists."""
    pattern = re.compile(r"(update|delete)\(\s*AuditEvent|(UPDATE|DELETE FROM)\s+audit_event",
                         re.IGNORECASE)
    found = [
        str(path.relative_to(ROOT))
        for top in ("bot", "worker")
        for path in (ROOT / top).rglob("*.py")
        if "migrations" not in path.parts and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []
