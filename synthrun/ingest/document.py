"""A parsed document: its plain text and the paragraph-like blocks chunking may break between."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class Block:
    """A span ``text[start:end]`` of a document that chunking keeps whole when it can."""

    start: int
    end: int
    section: str = ""


@dataclass
class Document:
    """What a reader extracts from a file.

    Attributes:
        text: The document's text. Chunk offsets index into it; for Markdown, plain text
            and code it is the file itself, for reST, HTML and PDF the extracted text.
        title: Document title (first heading, <title>, PDF metadata, or the file name).
        blocks: Paragraphs, list items, code blocks ... in order, each with its section path.
        kind: ``text`` (goes to the text table) or ``code``.
        language: Programming language of a code file.
    """

    text: str = ""
    title: str = ""
    blocks: list[Block] = field(default_factory=list)
    kind: Literal["text", "code"] = "text"
    language: str = ""


class TextBuilder:
    """Accumulates extracted blocks into one text, remembering each block's span."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self.blocks: list[Block] = []

    def add(self, text: str, section: str = "") -> None:
        """Append ``text`` as a block (blank-line separated; empty text is ignored)."""
        text = text.strip("\n").rstrip()
        if not text.strip():
            return
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        self._parts.append(text)
        self.blocks.append(Block(self._length, self._length + len(text), section))
        self._length += len(text)

    def add_region(self, text: str, spans: list[tuple[int, int]], section: str = "") -> None:
        """Append ``text`` whole, with blocks at ``spans`` (offsets into ``text``)."""
        spans = [(s, e) for s, e in spans if text[s:e].strip()]
        if not spans:
            return
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        base = self._length - spans[0][0]
        region = text[spans[0][0]:spans[-1][1]]
        self._parts.append(region)
        self.blocks.extend(Block(base + s, base + e, section) for s, e in spans)
        self._length += len(region)

    @property
    def text(self) -> str:
        return "".join(self._parts)


def section_path(titles: list[str]) -> str:
    """Join nested heading titles into a section path (``"Datasets > Chunked storage"``)."""
    return " > ".join(t for t in titles if t)


def line_offsets(text: str) -> list[int]:
    """Return the character offset where each line of ``text`` starts (plus one past the end)."""
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets
