"""The findings table of docs/image-check.md, generated from :data:`RULES`.

``python -m slipway.imagekit.findings_table docs/image-check.md`` rewrites the
table between its markers; a unit test fails when the docs and the code differ.
"""

from __future__ import annotations

import sys
from pathlib import Path

from slipway.imagekit.findings import RULES

__all__ = ["BEGIN", "END", "render_table", "rewrite"]

BEGIN = "<!-- findings table: generated from slipway.imagekit.findings.RULES -->"
END = "<!-- end of findings table -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table() -> str:
    """The Markdown table: id, severity, what it means, the fix, sanitise removes it."""
    lines = [
        BEGIN,
        "",
        "| id | severity | what | fix | sanitise |",
        "|---|---|---|---|---|",
    ]
    for r in RULES.values():
        removable = "removes" if r.removable else ""
        lines.append(
            f"| `{r.id}` | {r.severity} | {_cell(r.what)} | {_cell(r.fix)} | {removable} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def rewrite(doc: Path) -> bool:
    """Replace the table in ``doc``; True when the file changed."""
    text = doc.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + render_table() + text[end:]
    if new != text:
        doc.write_text(new)
    return new != text


if __name__ == "__main__":  # pragma: no cover
    changed = rewrite(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/image-check.md"))
    print("updated" if changed else "up to date")
