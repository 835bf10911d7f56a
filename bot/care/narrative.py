"""Narrative templates, rendered in Jinja's sandbox with strict undefined at send time.

A render is bounded (bot/bounded/, BoundedEnvironment): it fails with a NarrativeError naming the
template and line once it takes longer than RENDER_SECONDS, writes more than MAX_OUTPUT
characters, or would build a text, list or number too large.
"""

from __future__ import annotations

import traceback
from collections.abc import Generator
from functools import lru_cache
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, TemplateSyntaxError

from bot.care.bounded import BoundedEnvironment, Budget, LimitError, TimeLimitError, plain_reason
from bot.care.programs import Program

if TYPE_CHECKING:
    from bot.store.models import Participant

RENDER_SECONDS = 1.0  # a template that takes longer to render fails
MAX_OUTPUT = 10_000  # characters a template may write (well above the 1,600 of one text)


class NarrativeError(ValueError):
    """A template that cannot render, with the file and line a coordinator should open."""


@lru_cache(maxsize=32)
def _environment(folder: str) -> BoundedEnvironment:
    return BoundedEnvironment(
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


def _paused_line(stream: Generator[str, None, None] | None, template: Template | None
                 ) -> int | None:
    """The template line a render paused at (after writing its latest piece of text)."""
    line = None
    while stream is not None and template is not None:
        frame = getattr(stream, "gi_frame", None)
        if frame is not None and frame.f_code.co_filename == template.filename:
            line = template.get_corresponding_lineno(frame.f_lineno)
        stream = getattr(stream, "gi_yieldfrom", None)
    return line


def _shortened(text: str, most: int = 300) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def render(program: Program, template: str, context: dict[str, Any], *,
           seconds: float | None = None) -> str:
    """Render `template` of `program` to message text (whitespace trimmed).

    NarrativeError if it cannot: also when it takes longer than `seconds` (RENDER_SECONDS by
    default) or writes more than MAX_OUTPUT characters.
    """
    limit = RENDER_SECONDS if seconds is None else seconds
    compiled: Template | None = None
    stream: Generator[str, None, None] | None = None
    pieces: list[str] = []
    try:
        with Budget(limit) as budget:
            compiled = _environment(str(program.folder)).get_template(template)
            stream = compiled.generate(**context)
            size, deadline, keep = 0, budget.deadline, pieces.append
            for piece in stream:
                size += len(piece)
                if size > MAX_OUTPUT:
                    raise LimitError(
                        f"writes more than {MAX_OUTPUT:,} characters (a text message carries "
                        f"at most 1,600); check its loops"
                    )
                if monotonic() > deadline:
                    raise TimeLimitError(limit)
                keep(piece)
    except TemplateSyntaxError as exc:
        where = f"{program.name}/{template}"
        raise NarrativeError(f"{where}:{exc.lineno}: {_shortened(exc.message or '')}") from None
    except Exception as exc:
        where = f"{program.name}/{template}"
        line = _template_line(exc, template) or _paused_line(stream, compiled)
        suffix = f":{line}" if line else ""
        raise NarrativeError(f"{where}{suffix}: {_reason(exc, limit)}") from None
    finally:
        if stream is not None:
            stream.close()
    text = "".join(pieces)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _reason(exc: Exception, seconds: float) -> str:
    """What went wrong, in a coordinator's words."""
    if isinstance(exc, TimeLimitError):
        return f"this template takes too long to render (over {seconds:g} s); check its loops"
    if isinstance(exc, RecursionError):
        return ("this template nests too deeply, or a macro or include in it calls itself "
                "without end")
    reason = str(exc) if isinstance(exc, LimitError) else plain_reason(exc)
    if reason:
        return f"this template {reason}"
    if isinstance(exc, TemplateError):
        return _shortened(str(exc))
    # a coordinator's expression failed (e.g. division by zero)
    return _shortened(f"{type(exc).__name__}: {exc}")


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
