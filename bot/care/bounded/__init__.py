"""Bounds for what coordinators write: rules and templates run in `BoundedEnvironment`.

Jinja's sandbox, bounded in time (a deadline checked at every call, loop step and filter) and in
size (an operation that would build a text, list or number too large is refused before it is
computed), so a slip like `'x' * 300000000` or two nested loops over `range(100000)` fails fast
with a clear message instead of hanging a web request or a worker.
"""

from bot.care.bounded.budget import (
    MAX_BUILT,
    MAX_DIGITS,
    MAX_SIZE,
    Budget,
    LimitError,
    TimeLimitError,
    plain_reason,
    quoted,
)
from bot.care.bounded.environment import BoundedEnvironment

__all__ = [
    "MAX_BUILT", "MAX_DIGITS", "MAX_SIZE", "BoundedEnvironment", "Budget", "LimitError",
    "TimeLimitError", "plain_reason", "quoted",
]
