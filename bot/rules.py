"""Rule expressions: conditions coordinators write in program.yaml, in Jinja's safe language."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

_ENV = SandboxedEnvironment(undefined=StrictUndefined)

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


@dataclass(frozen=True)
class Rule:
    """A compiled condition; `where` is "folder/program.yaml:LINE" for messages."""

    source: str
    where: str
    _compiled: Any = field(compare=False, repr=False)

    def holds(self, context: dict[str, Any]) -> bool:
        """Whether the condition holds; RuleError (with file and line) if it cannot be decided."""
        try:
            return bool(self._compiled(**context))
        except Exception as exc:  # undefined names, None >= 4, division by zero ...
            raise RuleError(f"{self.where}: rule '{self.source}' failed: {exc}") from None


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
    except TemplateSyntaxError as exc:
        raise RuleError(
            f"{where}: rule '{text}' is not a valid expression ({exc.message})"
        ) from None
    unknown = sorted(meta.find_undeclared_variables(tree) - NAMES)
    if unknown:
        raise RuleError(
            f"{where}: rule '{text}' uses {', '.join(repr(n) for n in unknown)}, which rules "
            f"do not know (they can use: {', '.join(sorted(NAMES))})"
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
