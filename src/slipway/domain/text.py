"""Text that people write: what a name or a description may contain, and
how to show any text safely on a terminal.

Control characters (Unicode category Cc: U+0000 to U+001F and U+007F to U+009F) have
no place in a name, and on a terminal they are commands: ESC and CSI start
the sequences that recolour text, move the cursor, retitle the window or
rewrite what was printed before. The bidirectional controls (U+202A to
U+202E, U+2066 to U+2069) are refused too: they make text display in an
order other than the one it has, so a name or a script would read as
something it is not. Both are refused where text comes in, and shown as
escapes (``\\x1b``, ``\\u202e``) wherever text goes out to a terminal.
"""

from __future__ import annotations

import re

__all__ = ["control_character", "printable"]

_BIDI = "\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_CONTROL_BUT_LINES = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")
_NAMES = {
    0x00: "NUL",
    0x09: "tab",
    0x0A: "newline",
    0x0D: "carriage return",
    0x1B: "ESC",
    0x202E: "right-to-left override",
}


def control_character(text: str, *, multi_line: bool = False) -> str | None:
    """The first control character (or bidirectional control) of ``text``,
    described (``U+001B (ESC)``), or None. ``multi_line`` text may hold tabs and newlines."""
    found = (_CONTROL_BUT_LINES if multi_line else _CONTROL).search(text)
    if found is None:
        return None
    code = ord(found.group())
    name = _NAMES.get(code)
    return f"U+{code:04X}" + (f" ({name})" if name else "")


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline shown as an
    escape (ESC as ``\\x1b``), so that printing it cannot drive a terminal."""
    return _CONTROL_BUT_LINES.sub(_escape, text)


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
