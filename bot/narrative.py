"""Narrative templates, rendered in Jinja's sandbox with strict undefined at send time."""

from __future__ import annotations

import traceback
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from bot.programs import Program

if TYPE_CHECKING:
    from bot.models import Participant


class NarrativeError(ValueError):
    """A template that cannot render, with the file and line a coordinator should open."""


@lru_cache(maxsize=32)
def _environment(folder: str) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(folder),
        undefined=StrictUndefined,
        autoescape=False,  # SMS is plain text
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )


def _template_line(exc: BaseException, filename: str) -> int | None:
    """The template line a runtime error came from (Jinja maps it into the traceback)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and Path(frame.filename).name == Path(filename).name:
            line = frame.lineno
    return line


def render(program: Program, template: str, context: dict[str, Any]) -> str:
    """Render `template` of `program` to message text (whitespace trimmed)."""
    where = f"{program.name}/{template}"
    try:
        text = _environment(str(program.folder)).get_template(template).render(**context)
    except TemplateSyntaxError as exc:
        raise NarrativeError(f"{where}:{exc.lineno}: {exc.message}") from None
    except TemplateError as exc:
        line = _template_line(exc, template)
        suffix = f":{line}" if line else ""
        raise NarrativeError(f"{where}{suffix}: {exc}") from None
    except Exception as exc:  # a coordinator's expression failed (e.g. division by zero)
        line = _template_line(exc, template)
        suffix = f":{line}" if line else ""
        raise NarrativeError(f"{where}{suffix}: {type(exc).__name__}: {exc}") from None
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def base_context(participant: Participant, program: Program) -> dict[str, Any]:
    """The part of every template's context that describes who and what."""
    return {
        "participant": {
            "timezone": participant.timezone,
            "enrolled_at": participant.enrolled_at,
            "attributes": {**program.attribute_defaults, **dict(participant.attributes or {})},
        },
        "program": {
            "name": program.name,
            "title": program.title,
            "description": program.description,
            "frequency": program.frequency,
            "contact": program.contact,
        },
    }
