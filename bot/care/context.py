"""What a template may use (narratives/README.md, "Templates"), for a delivery of a participant."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from bot.care.narrative import base_context
from bot.care.outcomes import history_of, run_summary
from bot.care.programs import Intervention, Program
from bot.store.models import Answer, Delivery, InterventionRun, Participant

_ANSWERS = (  # built once: it runs for every batch rendered
    select(Answer.participant_id, Answer.value, Answer.raw, Answer.answered_at, Answer.missing)
    .where(col(Answer.participant_id).in_(bindparam("participants", expanding=True)),
           col(Answer.missing).is_(False))
    .order_by(col(Answer.answered_at), col(Answer.id))
)


def answers_of(session: Session, participant_ids: set[int]) -> dict[int, list[Any]]:
    """Each participant's real answers (a recorded `missing` is none), oldest first, in one
    query: rows with what a template may see of an answer (value, raw, answered_at, missing),
    not whole records."""
    found: dict[int, list[Any]] = {pid: [] for pid in participant_ids}
    if participant_ids:
        for row in session.exec(_ANSWERS, params={"participants": list(participant_ids)}):
            found[row.participant_id].append(row)
    return found


class History(Mapping[str, Any]):
    """A template's `history`: each part is read when a template first uses it, so a message
    that quotes no history costs nothing for it, however long the participant's history is."""

    def __init__(self, parts: dict[str, Callable[[], Any]]) -> None:
        self._parts = parts
        self._read: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._read:
            self._read[name] = self._parts[name]()  # KeyError: undefined, as in a dict
        return self._read[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)


def message_context(
    *,
    session: Session,
    participant: Participant,
    program: Program,
    delivery: Delivery,
    answers: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """What a template may use: see narratives/README.md, "Templates".

    `answers`: the participant's answers oldest first, as `answers_of` gives them, when the
    caller read them already (for a batch, in one query). `history` is read only as far as
    the template uses it, while `session` is open.
    """
    context = base_context(participant, program)
    _, _, occurrence = (delivery.event_key or "").partition("#")
    intervention, event = program.find_event(delivery.event_key or "")
    sent = (delivery.context or {}).get("sent_event")
    if sent:
        event = (
            intervention.event(sent) if intervention is not None
            else next((e for e in program.events if e.key == sent), None)
        ) or event
    context["event"] = {
        "key": event.key if event else "",
        "occurrence": int(occurrence) if occurrence.isdigit() else 0,
        "times": int((delivery.context or {}).get("times") or (event.times if event else 0)),
        "goal": event.goal if event else "",
    }
    def given() -> list[dict[str, Any]]:
        rows = answers
        if rows is None:
            rows = answers_of(session, {participant.id or 0})[participant.id or 0]
        # Unpacked by position: a year of answers, each read by name, costs more than the query.
        return [{"value": value, "raw": raw, "at": at}
                for _, value, raw, at, missing in rows if not missing]

    history = History({
        "answers": given,
        "answered": lambda: len(history["answers"]),
        "interventions": lambda: history_of(session, participant.id or 0, program),
    })
    context["history"] = history
    if delivery.kind == "narrative":
        context.update(narrative_context(session, program, delivery))
    return context


def intervention_place(
    program: Program, intervention: Intervention, reason: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The narrative's `current` (the intervention, its rationale and its place in the whole)
    and `next` (the following level in priority order, or None after the last)."""
    levels = list(program.levels)
    index = next((i for i, lv in enumerate(levels) if lv.key == intervention.level), 0)
    level = levels[index] if levels else None
    current = {
        "key": intervention.key,
        "title": intervention.title,
        "rationale": intervention.rationale,
        "reason": reason,
        "level": {
            "key": level.key if level else "",
            "title": level.title if level else "",
            "rationale": level.rationale if level else "",
            "position": index + 1,
            "count": len(levels),
        },
        "events": [
            {"key": e.key, "goal": e.goal, "times": e.times} for e in intervention.planned
        ],
    }
    after = levels[index + 1] if index + 1 < len(levels) else None
    following = (
        {"key": after.key, "title": after.title, "rationale": after.rationale} if after else None
    )
    return current, following


def narrative_context(
    session: Session, program: Program, delivery: Delivery
) -> dict[str, Any]:
    """`previous`, `current`, `next` and `reason` for the hub's narrative."""
    run = session.get(InterventionRun, delivery.run_id) if delivery.run_id else None
    context = delivery.context or {}
    previous_id = context.get("previous_run")
    previous = session.get(InterventionRun, int(previous_id)) if previous_id else None
    current, following = None, None
    if run is not None and (intervention := program.intervention(run.intervention)):
        current, following = intervention_place(program, intervention, run.reason)
    return {
        "previous": run_summary(session, previous, program) if previous else None,
        "current": current,
        "next": following,
        "reason": context.get("reason", "start"),
    }

