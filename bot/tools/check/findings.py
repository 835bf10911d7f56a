"""What `bot check` reports: each problem once, errors before warnings, and the length and
encoding problems of one message."""

from __future__ import annotations

from bot.delivery.encoding import MAX_CHARACTERS, WARN_SEGMENTS, encode


class Findings:
    """Problems, each reported once: the first persona that shows it, or the worst size."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, ...], tuple[int, str]] = {}

    def add(self, key: tuple[str, ...], message: str, size: int = 0) -> None:
        if key not in self._found or size > self._found[key][0]:
            self._found[key] = (size, message)

    def messages(self) -> list[str]:
        """Errors first; a length warning is left out where the same text is too long."""
        found = [message for key, (_, message) in self._found.items()
                 if not (key[0] == "segments" and ("long", *key[1:]) in self._found)]
        return [m for m in found if not m.startswith("warning: ")] + [
            m for m in found if m.startswith("warning: ")
        ]


def check_text(findings: Findings, where: str, what: str, text: str, suffix: str = "") -> None:
    """Length and encoding of one message; `where` names its file (and line)."""
    encoded = encode(text)
    if not encoded.body.strip():
        findings.add(("empty", where, what), f"{where}: {what} is empty{suffix}")
    elif encoded.characters > MAX_CHARACTERS:
        findings.add(("long", where, what),
                     f"{where}: {what} is {encoded.characters} characters, more than the "
                     f"{MAX_CHARACTERS} a text can carry{suffix}", encoded.characters)
    elif encoded.segments > WARN_SEGMENTS:
        findings.add(("segments", where, what),
                     f"warning: {where}: {what} takes {encoded.segments} {encoded.encoding} "
                     f"segments; keep messages to {WARN_SEGMENTS}{suffix}", encoded.segments)
