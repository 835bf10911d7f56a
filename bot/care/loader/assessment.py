"""An event's `assessment:`: the question, its thanks and clarification, timeout and reminder."""

from __future__ import annotations

from bot.care.assessments import prompt_hint, question_from_spec
from bot.care.loader.fields import Fields, number
from bot.care.loader.source import LineDict
from bot.care.program import DEFAULT_TIMEOUT_HOURS, AssessmentSpec


def assessment_of(fields: Fields, raw: LineDict) -> AssessmentSpec | None:
    """The assessment under `raw` (an event or the hub's state question), if it has one."""
    if (spec := raw.get("assessment")) is None:
        return None
    if not isinstance(spec, LineDict) or "type" not in spec:
        fields.add(
            f"{fields.at(raw, 'assessment')}: assessment needs a 'type' (yes_no, scale, choice, "
            f"number or text)"
        )
        return None
    try:
        question = question_from_spec(spec)
    except ValueError as exc:
        line = "min" if spec.get("type") == "scale" and "min" in spec else "type"
        fields.add(f"{fields.at(spec, line)}: {exc}")
        return None
    timeout = _timeout(fields, spec)
    reminder_after, reminder_text = _reminder(fields, spec, timeout)
    return AssessmentSpec(
        kind=question.kind,
        minimum=question.minimum,
        maximum=question.maximum,
        choices=question.choices,
        thanks=fields.text(spec, "thanks", required=False, default="Thanks, noted."),
        clarify=fields.text(
            spec,
            "clarify",
            required=False,
            default=f"Sorry, I didn't catch that. {prompt_hint(question)}",
        ),
        timeout_hours=timeout,
        reminder_after_hours=reminder_after,
        reminder_text=reminder_text,
    )


def _timeout(fields: Fields, spec: LineDict) -> float:
    timeout = number(spec.get("timeout_hours", DEFAULT_TIMEOUT_HOURS))
    if timeout is None or timeout <= 0:
        fields.add(f"{fields.at(spec, 'timeout_hours')}: 'timeout_hours' should be a number > 0")
        return DEFAULT_TIMEOUT_HOURS
    return timeout


def _reminder(fields: Fields, spec: LineDict, timeout: float) -> tuple[float | None, str]:
    """(after_hours, text) of the question's reminder; (None, "") without one."""
    reminder = fields.mapping_of(spec.get("reminder"), fields.at(spec, "reminder"), "reminder")
    if not reminder:
        return None, ""
    after = number(reminder.get("after_hours"))
    text = fields.text(reminder, "text")
    if after is None or not 0 < after < timeout:
        fields.add(
            f"{fields.at(reminder, 'after_hours')}: a reminder needs 'after_hours', more than 0 "
            f"and less than the question's timeout_hours ({timeout:g})"
        )
        after = None
    return after, text
