"""Rule expressions: conditions coordinators write in program.yaml, in Jinja's safe language,
evaluated in the bounded sandbox of bot.bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta

from bot.care.bounded import (
    BoundedEnvironment,
    Budget,
    LimitError,
    TimeLimitError,
    plain_reason,
    quoted,
)

RULE_SECONDS = 1.0  # a rule that takes longer to evaluate fails

# Every name a rule may use (documented in narratives/README.md, "Rule expressions").
NAMES = frozenset(
    {
        "answers", "answered", "asked", "missing", "at_least", "at_most", "last",
        "unanswered_in_a_row", "response_rate", "state", "attributes", "outcomes", "day",
        "run_day", "occurrence", "times", "local_hour", "weekday",
    }
)


class RuleError(ValueError):
    """A rule that cannot be compiled or evaluated, with the file and line it was written on."""


_ENV = BoundedEnvironment(undefined=StrictUndefined)


# --- rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A compiled condition; `where` is "folder/program.yaml:LINE" for messages."""

    source: str
    where: str
    _compiled: Any = field(compare=False, repr=False)

    def holds(self, context: dict[str, Any], *, seconds: float | None = None) -> bool:
        """Whether the condition holds; RuleError (with file and line) if it cannot be decided
        (or takes longer than `seconds`, RULE_SECONDS by default)."""
        limit = RULE_SECONDS if seconds is None else seconds
        rule = f"{self.where}: rule '{quoted(self.source)}'"
        try:
            with Budget(limit):
                return bool(self._compiled(**context))
        except TimeLimitError:
            raise RuleError(f"{rule} takes too long to evaluate (over {limit:g} s)") from None
        except LimitError as exc:
            raise RuleError(f"{rule} {exc}") from None
        except Exception as exc:  # undefined names, None >= 4, division by zero ...
            reason = plain_reason(exc)
            if reason:
                raise RuleError(f"{rule} {reason}") from None
            raise RuleError(f"{rule} failed: {quoted(str(exc), 300)}") from None


def compile_rule(source: Any, where: str) -> Rule:
    """Compile `source`; RuleError names the line and what is wrong, in a coordinator's words."""
    if not isinstance(source, str | bool | int) or not str(source).strip():
        raise RuleError(f"{where}: a rule should be an expression like \"last >= 3\"")
    text = str(source).strip()
    if isinstance(source, bool):
        text = "true" if source else "false"
    try:
        tree = _ENV.parse("{{ (" + text + ") }}")
        compiled = _ENV.compile_expression(text, undefined_to_none=False)
        unknown = sorted(meta.find_undeclared_variables(tree) - NAMES)
    except TemplateSyntaxError as exc:
        raise RuleError(
            f"{where}: rule '{quoted(text)}' is not a valid expression ({exc.message})"
        ) from None
    except Exception as exc:  # e.g. a number too long to read
        reason = plain_reason(exc) or f"is not a valid expression ({quoted(str(exc), 300)})"
        raise RuleError(f"{where}: rule '{quoted(text)}' {reason}") from None
    if unknown:
        raise RuleError(
            f"{where}: rule '{quoted(text)}' uses {', '.join(repr(n) for n in unknown)}, which "
            f"rules do not know (they can use: {', '.join(sorted(NAMES))})"
        )
    return Rule(source=text, where=where, _compiled=compiled)


def counting(values: list[float]) -> dict[str, Any]:
    """The answer-counting helpers rules use: at_least(x), at_most(x), last."""
    return {
        "answers": list(values),
        "at_least": lambda x: sum(1 for v in values if v >= x),
        "at_most": lambda x: sum(1 for v in values if v <= x),
        "last": values[-1] if values else None,
    }
