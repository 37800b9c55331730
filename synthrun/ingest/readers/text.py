"""Plain text: blank-line separated paragraphs of the file itself."""

from __future__ import annotations

import re

from synthrun.ingest.document import Block, Document

_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n[ \t]*\n|\s*\Z)", re.S)


def paragraphs(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Return the (start, end) spans of blank-line separated paragraphs in ``text[start:end]``."""
    end = len(text) if end is None else end
    return [(m.start(), m.end()) for m in _PARAGRAPH.finditer(text, start, end)]


def read_text(text: str, name: str = "") -> Document:
    """One block per paragraph; the title is the first line when it looks like a heading."""
    blocks = [Block(s, e) for s, e in paragraphs(text)]
    first = text[blocks[0].start:blocks[0].end] if blocks else ""
    title = first if first and "\n" not in first and len(first) < 100 else ""
    return Document(text=text, title=title, blocks=blocks)
