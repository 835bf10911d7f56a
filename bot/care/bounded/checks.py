"""Checks that refuse an operator, filter or method whose result would be too large, before it
is computed."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from functools import wraps
from itertools import chain
from string import Formatter
from time import monotonic
from typing import Any

from jinja2 import pass_environment
from jinja2.filters import make_attrgetter
from jinja2.utils import generate_lorem_ipsum

from bot.care.bounded.budget import (
    MAX_DIGITS,
    MAX_SIZE,
    LimitError,
    TimeLimitError,
    _checked,
    _count,
    _digits,
    _size,
    _spent,
    _too_large,
    _too_long,
    _width,
    check_deadline,
    current_budget,
    quoted,
)

# --- operators ---------------------------------------------------------------------------------


def _check_repeat(left: Any, right: Any) -> None:
    """`*`: numbers by their digits, repeated texts and lists by their length, before computing."""
    if isinstance(left, int) and isinstance(right, int):
        digits = _digits(left) + _digits(right) - 1
        if digits > MAX_DIGITS:
            raise LimitError(
                f"would build a number of about {digits:,} digits with '*' "
                f"(at most {MAX_DIGITS:,})"
            )
        return
    if isinstance(right, int) and isinstance(left, str | bytes | list | tuple):
        sequence, times = left, right
    elif isinstance(left, int) and isinstance(right, str | bytes | list | tuple):
        sequence, times = right, left
    else:
        return
    size = _size(sequence) * times
    if size > MAX_SIZE:
        raise _too_large(sequence, size, "'*'")


def _check_power(left: Any, right: Any) -> None:
    """`**` on whole numbers: refuse results of more digits than a number can be written with."""
    if not (isinstance(left, int) and isinstance(right, int)) or right <= 0 or abs(left) <= 1:
        return
    digits = right * math.log10(abs(left)) if right.bit_length() < 64 else math.inf
    if digits > MAX_DIGITS:
        about = f"{digits:,.0f}" if digits < 1e15 else "more than 10^15"
        raise LimitError(
            f"would build a number of about {about} digits with '**' (at most {MAX_DIGITS:,})"
        )


def _check_join(left: Any, right: Any) -> None:
    """`+` on texts or lists: refuse results over the size bound."""
    if (isinstance(left, str) and isinstance(right, str)) or (
        isinstance(left, list | tuple) and isinstance(right, list | tuple)
    ):
        size = _size(left) + _size(right)
        if size > MAX_SIZE:
            raise _too_large(left, size, "'+'")


_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsa]")


def _format_width(digits: str) -> None:
    if len(digits) > 6 or int(digits) > MAX_SIZE:
        raise LimitError(f"asks a format for {quoted(digits, 20)} characters "
                         f"(at most {MAX_SIZE:,})")


def _check_printf(text: str, values: Any) -> None:
    """`text % values` and the format filter: widths and precisions within the size bound."""
    starred = False
    for match in _PRINTF.finditer(text):
        for part in match.groups():
            if part == "*":
                starred = True
            elif part:
                _format_width(part)
    values = values if isinstance(values, tuple) else (values,)
    for value in values:
        if starred and isinstance(value, int):
            _width("a format", value)
        _checked(value, "'%'")


def _check_str_format(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """str.format and format_map: widths within the size bound, arguments not too large."""
    values = [*args, *kwargs.values()]
    values += [v for arg in args if isinstance(arg, dict) for v in arg.values()]
    try:
        fields = list(Formatter().parse(text))
    except ValueError:
        return  # the call itself reports the broken format
    for _, _, spec, _ in fields:
        for digits in re.findall(r"\d+", spec or ""):
            _format_width(digits)
        if spec and "{" in spec:
            for value in values:
                _width("a format", value)
    for value in values:
        _checked(value, "format")


def _check_text_method(owner: str | bytes, name: str, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """A method of a text that can build a much longer one; returns the arguments to call with."""
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _width(f"'{name}'", args[0])
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            tab = "\t" if isinstance(owner, str) else b"\t"
            size = len(owner) + owner.count(tab) * tabsize  # type: ignore[arg-type]
            if size > MAX_SIZE:
                raise _too_large(owner, size, "'expandtabs'")
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, type(owner)) and isinstance(new, type(owner)):
            size = _replaced_size(owner, old, new, args[2] if len(args) > 2 else -1)
            if size > MAX_SIZE:
                raise _too_large(owner, size, "'replace'")
    elif name == "join" and args:
        items = list(args[0])
        size = len(owner) * max(len(items) - 1, 0) + sum(_size(item) for item in items)
        if size > MAX_SIZE:
            raise _too_large(owner, size, "'join'")
        return (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        size = len(owner) * longest
        if size > MAX_SIZE:
            raise _too_large(owner, size, "'translate'")
    return args


def _replaced_size(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


# --- filters and globals -----------------------------------------------------------------------


def _check_indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    indent = len(width) if isinstance(width, str) else width
    if isinstance(indent, int):
        size = len(str(value)) + (str(value).count("\n") + 1) * indent
        if size > MAX_SIZE:
            raise _too_long(size, "'indent'")


def _check_join_filter(value: Any, d: Any = "", attribute: Any = None, *_: Any,
                       **__: Any) -> list[Any]:
    items = list(value)
    size = len(str(d)) * max(len(items) - 1, 0)
    if attribute is None:
        size += sum(_size(item) for item in items)
    if size > MAX_SIZE:
        raise _too_long(size, "'join'")
    return items


def _check_replace(value: Any, old: Any = "", new: Any = "", count: Any = None, *_: Any,
                   **__: Any) -> None:
    size = _replaced_size(str(value), str(old), str(new), -1 if count is None else count)
    if size > MAX_SIZE:
        raise _too_long(size, "'replace'")


def _check_wordwrap(value: Any, width: Any = 79, break_long_words: Any = True,
                    wrapstring: Any = None, *_: Any, **__: Any) -> None:
    text = str(value)
    if isinstance(width, int) and width > 0:
        lines = min(len(text) + 1, len(text.split()) + len(text) // width + 1)
        size = len(text) + lines * len(str(wrapstring or "\n"))
        if size > MAX_SIZE:
            raise _too_long(size, "'wordwrap'")


def _check_round(value: Any, precision: Any = 0, *_: Any, **__: Any) -> None:
    if isinstance(precision, int) and abs(precision) > MAX_DIGITS:
        raise LimitError(f"asks 'round' for {_count(abs(precision))} digits "
                         f"(at most {MAX_DIGITS:,})")


# Filters that can build far more than they are given, and how to bound each before it runs;
# a check may return the value to run the filter on (a generator it had to look through).
_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "center": lambda value, width=80, *_, **__: _width("'center'", width),
    "indent": _check_indent,
    "format": lambda value, *args, **kwargs: _check_printf(str(value), tuple(kwargs.values())
                                                           or args),
    "join": _check_join_filter,
    "replace": _check_replace,
    "wordwrap": _check_wordwrap,
    "batch": lambda value, linecount=1, fill_with=None, *_, **__: (
        fill_with is not None and _width("'batch'", linecount, "items")
    ),
    "slice": lambda value, slices=1, *_, **__: _width("'slice'", slices, "slices"),
    "round": _check_round,
}


@pass_environment
def _sum(environment: Any, iterable: Iterable[Any], attribute: Any = None,
         start: Any = 0) -> Any:
    """The sum filter, in linear time when it joins lists (Python's sum would copy each time)."""
    if attribute is not None:
        iterable = map(make_attrgetter(environment, attribute), iterable)
    if not isinstance(start, list | tuple):
        return sum(iterable, start)
    parts = list(iterable)
    if not all(isinstance(part, type(start)) for part in parts):
        return sum(parts, start)
    size = _size(start) + sum(_size(part) for part in parts)
    if size > MAX_SIZE:
        raise _too_large(start, size, "'sum'")
    return type(start)(chain(start, *parts))


# Filters (and tests) that write out what they are given: a list too large to write out is
# refused before they start. Every filter checks the deadline; the others (length, sort,
# selectattr ...) take time and space in proportion to what they are given.
_WRITING = frozenset({
    "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "join", "lower",
    "pprint", "replace", "safe", "string", "striptags", "title", "tojson", "trim", "truncate",
    "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
})


def _guarded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` (a filter or test) with the deadline and size bounds around it."""
    writing = name in _WRITING
    check = _FILTER_CHECKS.get(name)
    if not writing and check is None and name != "sum":

        @wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            budget = current_budget()
            if budget is not None and monotonic() > budget.deadline:
                raise TimeLimitError(budget.seconds)
            return function(*args, **kwargs)

        return timed
    first = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
    how = f"'{name}'"

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        if writing:
            for arg in chain(args[first:], kwargs.values()):
                _checked(arg, how)
        if check is not None and len(args) > first:
            value = check(*args[first:], **kwargs)
            if isinstance(value, list):
                args = (*args[:first], value, *args[first + 1:])
        return _spent(function(*args, **kwargs), how)

    return guarded


def _range(*args: Any) -> range:
    """range(), refused over MAX_SIZE numbers (loops over it are deadline-checked)."""
    numbers = range(*args)
    step = numbers.step
    count = max(0, (numbers.stop - numbers.start + step - (1 if step > 0 else -1)) // step)
    if count > MAX_SIZE:
        raise LimitError(f"asks range() for {_count(count)} numbers (at most {MAX_SIZE:,})")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if isinstance(n, int) and isinstance(max, int) and n * max * 8 > MAX_SIZE:
        raise LimitError(f"asks lipsum() for {_count(n * max)} words (at most {MAX_SIZE // 8:,})")
    return generate_lorem_ipsum(n, html, min, max)


def _checked_output(value: Any) -> Any:
    """Every {{ value }} before it is written out: not too large to write."""
    if not isinstance(value, str) and _size(value) > MAX_SIZE:
        raise LimitError(f"would write out a list of over {MAX_SIZE:,} characters")
    return value


