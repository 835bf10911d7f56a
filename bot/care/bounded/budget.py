"""The budget of one render or rule evaluation: its deadline, what it built, and the limits."""

from __future__ import annotations

import math
from contextvars import ContextVar
from itertools import chain
from time import monotonic
from typing import Any

MAX_SIZE = 100_000  # characters (written out) of one text or list a template or rule builds
MAX_BUILT = 10_000_000  # characters built in all by one render or rule evaluation
MAX_DIGITS = 4_300  # digits of a number (Python refuses to write out longer ones)

class LimitError(Exception):
    """A template or rule went over a bound; the message completes "this template ..."."""


class TimeLimitError(LimitError):
    """A template or rule ran past its deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"takes too long (over {seconds:g} s); check its loops")
        self.seconds = seconds


# --- the budget of one render or rule evaluation -----------------------------------------------


class Budget:
    """The bounds of one render or rule evaluation: what `BoundedEnvironment` runs inside
    `with Budget(seconds):` fails after `seconds` or once it has built MAX_BUILT characters."""

    __slots__ = ("seconds", "deadline", "built", "_token")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = math.inf
        self.built = 0

    def __enter__(self) -> Budget:
        self.deadline = monotonic() + self.seconds
        self._token = _BUDGET.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _BUDGET.reset(self._token)

    def check(self) -> None:
        """TimeLimitError once the deadline has passed."""
        if monotonic() > self.deadline:
            raise TimeLimitError(self.seconds)


_BUDGET: ContextVar[Budget | None] = ContextVar("tend_budget", default=None)


def current_budget() -> Budget | None:
    """The budget of the render or rule evaluation running in this context, if any."""
    return _BUDGET.get()


def check_deadline() -> None:
    """TimeLimitError once the current budget's deadline has passed."""
    budget = _BUDGET.get()
    if budget is not None and monotonic() > budget.deadline:
        raise TimeLimitError(budget.seconds)


def _built(size: int) -> None:
    """Count `size` characters built against the current budget."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.built += size
        if budget.built > MAX_BUILT:
            raise LimitError(f"builds more than {MAX_BUILT:,} characters in all; check its loops")


_CONTAINERS = (list, tuple, dict, set, frozenset)
_SIZED = (str, bytes, *_CONTAINERS)


def _size(value: Any, limit: int = MAX_SIZE) -> int:
    """About how many characters `value` takes written out; counting stops just past `limit`."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return 1 + value.bit_length() * 3 // 10
    if isinstance(value, range):
        return len(value)
    if not isinstance(value, _CONTAINERS):
        return 1
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        total += 1
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, int):
            total += item.bit_length() * 3 // 10
        elif isinstance(item, _CONTAINERS):
            if len(item) > limit:
                return limit + len(item)
            stack.extend(chain(item.keys(), item.values()) if isinstance(item, dict) else item)
    return total


def quoted(text: str, most: int = 200) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _count(number: int) -> str:
    return f"{number:,}" if number.bit_length() < 50 else f"about 10^{_digits(number)}"


def _digits(number: int) -> int:
    return int(number.bit_length() * math.log10(2)) + 1


def _too_long(size: int, how: str) -> LimitError:
    return LimitError(f"would build a text of about {_count(size)} characters with {how} "
                      f"(at most {MAX_SIZE:,})")


def _too_large(value: Any, size: int, how: str) -> LimitError:
    if isinstance(value, str | bytes):
        return _too_long(size, how)
    return LimitError(f"would build a list too long to write out with {how} "
                      f"(over {MAX_SIZE:,} characters)")


def plain_reason(exc: BaseException) -> str | None:
    """What a few of Python's own errors mean, completing "this template ..."; None otherwise."""
    if isinstance(exc, RecursionError):
        return "nests too deeply"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return f"has a number of more than {MAX_DIGITS:,} digits"
    if isinstance(exc, MemoryError):
        return "needs more memory than there is"
    return None


def _checked(value: Any, how: str) -> None:
    """LimitError if `value` (not a text: those are bounded when built) is too large to use."""
    if not isinstance(value, str) and _size(value) > MAX_SIZE:
        raise _too_large(value, _size(value), how)


def _width(how: str, width: Any, unit: str = "characters") -> None:
    if isinstance(width, int) and width > MAX_SIZE:
        raise LimitError(f"asks {how} for {_count(width)} {unit} (at most {MAX_SIZE:,})")


def _spent(result: Any, how: str) -> Any:
    """Count a text or list `how` built against the budget (a list by its length: what it holds
    was counted when built)."""
    if isinstance(result, _SIZED):
        size = len(result)
        if size > MAX_SIZE:
            raise _too_large(result, size, how)
        _built(size)
    return result


