"""BoundedEnvironment: Jinja's sandbox with a deadline at every call, loop step and filter, and
every growing operation checked."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from time import monotonic
from types import BuiltinMethodType
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.sandbox import SandboxedEnvironment, modifies_known_mutable

from bot.care.bounded.budget import (
    MAX_SIZE,
    Budget,
    LimitError,
    TimeLimitError,
    _built,
    _size,
    _spent,
    _too_large,
    _width,
    check_deadline,
    current_budget,
)
from bot.care.bounded.checks import (
    _check_join,
    _check_power,
    _check_printf,
    _check_repeat,
    _check_str_format,
    _check_text_method,
    _checked_output,
    _guarded,
    _lipsum,
    _range,
    _sum,
)

# --- the environment ---------------------------------------------------------------------------


class _Buffer(list[str]):
    """What a macro, call or set block writes, bounded like any text as it is written."""

    __slots__ = ("size",)

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def append(self, text: str) -> None:
        self._grow(len(text) if isinstance(text, str) else 1)
        super().append(text)

    def extend(self, texts: Iterable[str]) -> None:
        texts = tuple(texts)
        self._grow(sum(len(t) if isinstance(t, str) else 1 for t in texts))
        super().extend(texts)

    def _grow(self, size: int) -> None:
        check_deadline()
        self.size += size
        if self.size > MAX_SIZE:
            raise LimitError(f"would build a text of over {MAX_SIZE:,} characters "
                             f"in a macro or block")
        _built(size)


def _loop_iterable(node: nodes.Expr) -> nodes.Expr:
    """`node` as a for loop iterates over it: through `bounded_iter`, a deadline check a step."""
    if (isinstance(node, nodes.Call) and isinstance(node.node, nodes.EnvironmentAttribute)
            and node.node.name == "bounded_iter"):
        return node
    return nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [node], [], None, None,
                      lineno=node.lineno)


class _BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with loops, block output and `~` bounded."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = _loop_iterable(node.iter)
        super().visit_For(node, frame)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile or frame.eval_ctx.autoescape:
            super().visit_Concat(node, frame)
            return
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _steps(iterable: Iterable[Any], budget: Budget) -> Iterator[Any]:
    deadline = budget.deadline
    for item in iterable:
        if monotonic() > deadline:
            raise TimeLimitError(budget.seconds)
        yield item


class BoundedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, bounded in time and size (see the module docstring).

    Run inside `with Budget(seconds):` for the deadline and the total; outside one, only the
    sizes of single values are bounded.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("finalize", _checked_output)
        super().__init__(*args, **kwargs)
        self.globals["range"] = _range
        self.globals["lipsum"] = _lipsum
        self.filters["sum"] = _sum
        self.filters = {name: _guarded(name, f) for name, f in self.filters.items()}
        for name in ("lower", "upper"):  # the tests that write their value out
            self.tests[name] = _guarded(name, self.tests[name])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            _check_join(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        result = self.binop_table[operator](left, right)
        if isinstance(result, str | list | tuple):
            _built(len(result))
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        if isinstance(__obj, BuiltinMethodType):
            owner, name = __obj.__self__, __obj.__name__
            if isinstance(owner, str | bytes):
                args = _check_text_method(owner, name, args, kwargs)
            elif isinstance(owner, int) and name == "to_bytes":
                _width("'to_bytes'", args[0] if args else kwargs.get("length", 1))
            elif modifies_known_mutable(owner, name):
                size = _size(owner) + _size(args) + _size(kwargs)
                if size > MAX_SIZE:
                    raise _too_large(owner, size, f"'{name}'")
        return _spent(super().call(__context, __obj, *args, **kwargs), "a function")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__

        @wraps(wrapped)
        def checked(*args: Any, **kwargs: Any) -> str:
            _check_str_format(text, args, kwargs)
            return wrapped(*args, **kwargs)

        return checked

    def get_template(self, *args: Any, **kwargs: Any) -> Any:
        check_deadline()  # an include runs through here on every pass
        return super().get_template(*args, **kwargs)

    def select_template(self, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        return super().select_template(*args, **kwargs)

    # Called from the code _BoundedCodeGenerator writes.

    def bounded_iter(self, iterable: Iterable[Any]) -> Iterable[Any]:
        budget = current_budget()
        return iterable if budget is None else _steps(iterable, budget)

    def bounded_buffer(self) -> list[str]:
        return _Buffer()

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        size = sum(len(part) if isinstance(part, str) else _size(part) for part in parts)
        if size > MAX_SIZE:
            raise LimitError(f"would build a text of over {MAX_SIZE:,} characters with '~'")
        _built(size)
        return "".join(map(str, parts))



