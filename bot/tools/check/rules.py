"""What a rule reads, for `bot check`: keys a program never fills in, and how to write a rule
that failed so it copes with every participant."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, nodes

from bot.care.programs import Program
from bot.care.rules import Rule

DICT_METHODS = frozenset({"get", "keys", "values", "items"})
_PARSER = Environment()


def _lookups(rule: Rule) -> tuple[set[str], set[tuple[str, str]]]:
    """The names a rule reads, and the keys it reads of a name (state.stress,
    outcomes['gratitude'], outcomes.get('gratitude'), 'gratitude' in outcomes)."""
    tree = _PARSER.parse("{{ (" + rule.source + ") }}")
    names = {node.name for node in tree.find_all(nodes.Name)}
    keys: set[tuple[str, str]] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call, nodes.Compare)):
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            if node.attr not in DICT_METHODS:
                keys.add((node.node.name, node.attr))
        elif isinstance(node, nodes.Getitem) and isinstance(node.node, nodes.Name):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                keys.add((node.node.name, node.arg.value))
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            owner, args = node.node.node, node.args
            if (node.node.attr == "get" and isinstance(owner, nodes.Name) and args
                    and isinstance(args[0], nodes.Const) and isinstance(args[0].value, str)):
                keys.add((owner.name, args[0].value))
        elif isinstance(node, nodes.Compare) and isinstance(node.expr, nodes.Const):
            for operand in node.ops:
                if operand.op in ("in", "notin") and isinstance(operand.expr, nodes.Name):
                    keys.add((operand.expr.name, str(node.expr.value)))
    return names, keys


def unknown_keys(rule: Rule, program: Program) -> list[str]:
    """Keys a rule reads that this program never fills in: a typo that would never hold."""
    state = program.hub.state if program.hub else None
    known = {
        "state": ({state.key} if state else set(), "the program's state assessment",
                  state.key if state else "none"),
        "outcomes": ({i.key for i in program.interventions}, "the program's interventions",
                     ", ".join(i.key for i in program.interventions) or "none"),
        "attributes": (set(program.attribute_defaults), "the program's attributes",
                       ", ".join(program.attribute_defaults) or "none"),
    }
    problems = []
    for name, key in sorted(_lookups(rule)[1]):
        if name in known and key not in known[name][0]:
            _, what, listed = known[name]
            problems.append(f"{rule.where}: rule '{rule.source}' reads {name} '{key}', which is "
                            f"not one of {what} ({listed})")
    return problems


def hint(rule: Rule, context: dict[str, Any], failure: str) -> str:
    """How to write a rule that failed so it copes with this participant."""
    names, keys = _lookups(rule)
    empty = [n for n in sorted(names) if n in context and context[n] is None]
    empty += [f"state.{k}" for name, k in sorted(keys)
              if name == "state" and k in context["state"] and context["state"][k] is None]
    if empty and "NoneType" in failure:
        return f"; {empty[0]} is none then: write '{empty[0]} is not none and ...'"
    untried = [k for name, k in sorted(keys) if name == "outcomes" and k not in context["outcomes"]]
    if untried and "NoneType" not in failure:
        return (f"; outcomes has no '{untried[0]}' before it is tried: write "
                f"\"outcomes.get('{untried[0]}') == ...\"")
    return ""
