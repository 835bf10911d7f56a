"""The layout tells the architecture: the domain never reaches up, modules stay small, no cycles."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = ("store", "care", "participants", "conversation", "delivery", "people")
ABOVE = ("bot.web", "bot.tools", "bot.sandbox", "worker")
# Commands that start processes: the only part of bot/ that may import worker/.
ENTRY_POINTS = ("bot.tools.cli", "bot.tools.local", "bot.tools.simulate", "bot.tools.bench")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
# Modules or functions still to be split, at their size then: none may grow, none may join.
TOO_LONG_YET: dict[str, int] = {}
TOO_LONG_FUNCTIONS_YET: dict[str, int] = {}


def modules() -> dict[str, Path]:
    found = {}
    for top in ("bot", "worker"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Every module `name` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            known = modules()
            named = {f"{base}.{alias.name}" for alias in node.names} & set(known)
            # `from bot import web` imports the module bot.web, not bot/__init__.py.
            found.update(named if len(named) == len(node.names) else named | {base})
    known = modules()
    return {m for m in found if m in known}


def under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_domain_never_imports_the_web_the_tools_the_sandbox_or_the_worker() -> None:
    wrong = [
        f"{name} imports {target}"
        for name, path in modules().items()
        if any(under(name, f"bot.{package}") for package in DOMAIN)
        for target in imports_of(name, path)
        if any(under(target, above) for above in ABOVE)
    ]
    assert wrong == []


def test_the_web_never_imports_the_tools_or_the_worker() -> None:
    wrong = [
        f"{name} imports {target}"
        for name, path in modules().items()
        if under(name, "bot.web")
        for target in imports_of(name, path)
        if under(target, "bot.tools") or under(target, "worker")
    ]
    assert wrong == []


def test_only_the_commands_that_start_processes_import_the_worker() -> None:
    wrong = [
        f"{name} imports {target}"
        for name, path in modules().items()
        if under(name, "bot") and not any(under(name, entry) for entry in ENTRY_POINTS)
        for target in imports_of(name, path)
        if under(target, "worker")
    ]
    assert wrong == []


def test_the_worker_holds_only_jobs_and_the_dispatcher_loop() -> None:
    assert {path.name for path in (ROOT / "worker").glob("*.py")} == {
        "__init__.py", "context.py", "dispatcher.py", "jobs.py"
    }
    wrong = [
        f"{name} imports {target}"
        for name, path in modules().items()
        if under(name, "worker")
        for target in imports_of(name, path)
        if any(under(target, above) for above in ("bot.web", "bot.tools", "bot.sandbox"))
    ]
    assert wrong == []


def test_no_two_packages_import_each_other() -> None:
    def package(module: str) -> str:
        parts = module.split(".")
        if module == "bot":
            return "bot (create_app)"
        return ".".join(parts[:2]) if parts[0] == "bot" and len(parts) > 1 else parts[0]

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules().items():
        for target in imports_of(name, path):
            if package(target) != package(name):
                graph[package(name)].add(package(target))

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in graph.get(start, ())
        )

    cycles = sorted(p for p in graph if reaches(p, p, {p}))
    assert cycles == [], {p: sorted(graph[p]) for p in cycles}


def test_no_module_is_too_long_to_read() -> None:
    long = {
        name: lines
        for name, path in modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines()))
        > max(MAX_MODULE_LINES, TOO_LONG_YET.get(name, 0))
    }
    assert long == {}


def test_no_function_is_too_long_to_read() -> None:
    long = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{name}.{node.name}"
                if lines > max(MAX_FUNCTION_LINES, TOO_LONG_FUNCTIONS_YET.get(where, 0)):
                    long[where] = lines
    assert long == {}
