"""Reading program.yaml: UTF-8 text, YAML that remembers where each key is, the content hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from bot.care.program import DEFINITION_FILE, ProgramError


class LineDict(dict):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LineDict:
        mapping = LineDict(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value
        }
        return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping
)


def _int_or_clock(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int | str:
    # YAML 1.1 reads an unquoted 10:00 as the base-60 number 600; coordinators mean a time.
    if ":" in str(node.value):
        return str(node.value)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_LineLoader.add_constructor("tag:yaml.org,2002:int", _int_or_clock)


def read_text(path: Path, where: str) -> str:
    """A content file as text; a file that is not UTF-8 is named with the line of its first bad
    byte, as a coordinator's editor shows it."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ProgramError([
            f"{where}:{line}: this file is not saved as UTF-8 text (byte {raw[exc.start]:#04x} "
            f"cannot be read); save it as UTF-8 in your editor"
        ]) from None


def read_definition(folder: Path) -> tuple[str, LineDict]:
    """The program's name for messages ("daily-checkin/program.yaml") and its top mapping."""
    path = folder / DEFINITION_FILE
    where = f"{path.parent.name}/{DEFINITION_FILE}"
    if not path.is_file():
        raise ProgramError([f"{where}: missing (every program folder needs one)"])
    source = read_text(path, where)
    try:
        data = yaml.load(source, Loader=_LineLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ProgramError([f"{where}{line}: this is not valid YAML ({reason})"]) from None
    if not isinstance(data, LineDict):
        raise ProgramError([f"{where}:1: expected settings like 'title: ...' at the top level"])
    return where, data


def version(folder: Path) -> str:
    """Content hash of every file of the program: deliveries record which content they came from."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
