"""Staff and a participant with a story, made straight in the database for the console's tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from bot.people import staff
from bot.store.models import (
    Alert,
    Answer,
    ConsentEvent,
    DecisionPoint,
    Delivery,
    DeliveryStatus,
    InboundMessage,
    InterventionRun,
    Participant,
)
from bot.store.support import Staff, StaffNote

PASSWORD = "a long enough passphrase"
# One person per role, as a small study team has them.
TEAM = {
    "admin": "ada@clinic.example",  # runs the study's accounts
    "coordinator": "cora@clinic.example",  # enrolls, pauses, edits
    "coach": "cole@clinic.example",  # answers participants
    "analyst": "ana@clinic.example",  # reads de-identified data for the trial analysis
}
PHONE = "+14155550123"


def add_team(session: Session) -> dict[str, Staff]:
    team = {
        role: staff.add(session=session, email=email, role=role, password=PASSWORD,
                        name=email.split("@")[0].capitalize())
        for role, email in TEAM.items()
    }
    session.commit()
    return team


def participant_with_story(session: Session, *, start: datetime, phone: str = PHONE,
                           days: int = 3, program: str = "daily-checkin") -> Participant:
    """A participant enrolled at `start` with `days` days of history: each day a tip, a rating
    question and its answer, a decision point; a micro intervention; a crisis alert; a note."""
    person = Participant(phone=phone, program=program, timezone="America/Chicago",
                         enrolled_at=start, attributes={})
    session.add(person)
    session.flush()
    pid = person.id or 0
    session.add(ConsentEvent(participant_id=pid, kind="enrolled", via="JOIN", at=start))
    run = InterventionRun(participant_id=pid, intervention="gratitude", level="wellbeing",
                          reason="lowest recent mood", started_at=start + timedelta(hours=1),
                          ended_at=start + timedelta(days=days), outcome="achieved",
                          end_reason="completed")
    session.add(run)
    session.flush()
    for day in range(days):
        at = start + timedelta(days=day, hours=2)
        tip = Delivery(participant_id=pid, kind="event", event_key=f"daily_tip#{day + 1}",
                       due_at=at, status=DeliveryStatus.DELIVERED, sent_at=at, final_at=at,
                       body=f"Tip {day + 1}: take a slow breath before you answer.")
        question = Delivery(participant_id=pid, kind="event", run_id=run.id,
                            event_key=f"evening_rating#{day + 1}",
                            assessment={"type": "scale", "min": 1, "max": 5},
                            due_at=at + timedelta(hours=8), status=DeliveryStatus.DELIVERED,
                            sent_at=at + timedelta(hours=8), final_at=at + timedelta(hours=8),
                            body="How did today go? Reply 1-5.")
        session.add_all([tip, question])
        session.flush()
        reply = InboundMessage(message_sid=f"SM{pid:04d}{day:028d}", participant_id=pid,
                               from_phone=phone, body=f"{day % 5 + 1} it was ok",
                               intent="answer", received_at=at + timedelta(hours=9))
        session.add(reply)
        session.flush()
        session.add(Answer(participant_id=pid, delivery_id=question.id or 0,
                           inbound_message_id=reply.id, raw=reply.body, value=day % 5 + 1,
                           answered_at=reply.received_at))
        session.add(DecisionPoint(participant_id=pid, run_id=run.id, delivery_id=tip.id or 0,
                                  decision=f"daily_tip#{day + 1}", available=True,
                                  probability=0.5, choice="daily_tip", decided_at=at))
    crisis = InboundMessage(message_sid=f"SMcrisis{pid:026d}", participant_id=pid,
                            from_phone=phone, body="i want to die", intent="crisis",
                            received_at=start + timedelta(days=days, hours=1))
    session.add(crisis)
    session.flush()
    session.add(Alert(participant_id=pid, kind="crisis", category="suicide",
                      detail="suicide: matched 'want to die'", inbound_message_id=crisis.id,
                      created_at=crisis.received_at))
    person.paused_at = crisis.received_at  # as crisis language pauses automated content
    session.add(ConsentEvent(participant_id=pid, kind="paused", via="crisis language",
                             at=crisis.received_at))
    session.add(Delivery(participant_id=pid, kind="event", event_key=f"daily_tip#{days + 1}",
                         due_at=start + timedelta(days=days + 2), body=None))
    session.commit()
    return person


def add_note(session: Session, *, participant: Participant, author: Staff, body: str,
             at: datetime) -> StaffNote:
    note = StaffNote(participant_id=participant.id or 0, staff_id=author.id or 0, body=body,
                     created_at=at)
    session.add(note)
    session.commit()
    return note
