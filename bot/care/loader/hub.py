"""`hub:`: when the hub evaluates and narrates, and the state question it asks."""

from __future__ import annotations

from datetime import time

from bot.care.loader.assessment import assessment_of
from bot.care.loader.fields import Fields, clock
from bot.care.loader.source import LineDict
from bot.care.program import Hub, StateQuestion


def hub_of(fields: Fields, data: LineDict) -> Hub | None:
    raw_hub = fields.mapping_of(data.get("hub"), fields.at(data, "hub"), "hub")
    if not raw_hub:
        return None
    state = _state_question(fields, raw_hub)
    hub_at = clock(raw_hub.get("at", "18:00"))
    if hub_at is None:
        fields.add(f"{fields.at(raw_hub, 'at')}: 'at' should be a local time like 18:00")
    return Hub(
        narrative=fields.template(raw_hub, "narrative", required=False) or None,
        first_day=fields.whole(raw_hub, "first_day", 0, 0) or 0,
        at=hub_at or time(18, 0),
        evaluate_every_days=fields.whole(raw_hub, "evaluate_every_days", None, 1),
        finished=fields.template(raw_hub, "finished", required=False) or None,
        state=state,
    )


def _state_question(fields: Fields, raw_hub: LineDict) -> StateQuestion | None:
    """`state_assessment:` the question that tells the hub which need a participant has."""
    raw_state = fields.mapping_of(
        raw_hub.get("state_assessment"), fields.at(raw_hub, "state_assessment"),
        "state_assessment",
    )
    if not raw_state:
        return None
    spec = assessment_of(fields, raw_state)
    if spec is None and "assessment" not in raw_state:
        fields.add(f"{fields.at(raw_state)}: state_assessment needs an 'assessment'")
    key = fields.text(raw_state, "key")
    if spec is None:
        return None
    return StateQuestion(key=key, template=fields.template(raw_state, "template"), assessment=spec)
