"""Cut a :class:`Document` into chunks by size and overlap, breaking between blocks.

Blocks (paragraphs, list items, code blocks ...) are packed greedily into chunks of at
most ``size`` units. A block larger than ``size - overlap`` is split at the best break near
the limit (line end, then sentence end, then a space). A new section starts a new chunk once
the current one holds at least ``min_size`` units (small sections are merged rather than
left as tiny chunks). Consecutive chunks of one section share about ``overlap`` units.
Every chunk's text is exactly ``document.text[start:end]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from synthrun.ingest.document import Block, Document
from synthrun.ingest.tokens import Measure

_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"[.!?;:](?=\s)"), re.compile(r"\s"))


@dataclass
class Span:
    """A chunk-to-be: ``text[start:end]`` and the section of its first block."""

    start: int
    end: int
    section: str = ""


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop leading blank lines and trailing whitespace (the first line keeps its indentation)."""
    first = start
    while first < end and text[first].isspace():
        first += 1
    line_start = text.rfind("\n", start, first) + 1
    start = max(start, line_start) if first < end else end
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split_block(text: str, block: Block, size: int, measure: Measure) -> list[Span]:
    """Split one block into pieces of at most ``size`` units, preferring natural breaks."""
    pieces: list[Span] = []
    start, end = _trim(text, block.start, block.end)
    while start < end:
        limit = start + measure.cut(text[start:end], size)
        if limit >= end:
            pieces.append(Span(start, end, block.section))
            break
        cut = limit
        floor = start + (limit - start) // 2
        for pattern in _BREAKS:
            found = [m.end() for m in pattern.finditer(text, floor, limit)]
            if found:
                cut = found[-1]
                break
        if cut <= start:
            cut = max(limit, start + 1)
        s, e = _trim(text, start, cut)
        if e > s:
            pieces.append(Span(s, e, block.section))
        start, end = _trim(text, cut, end)
    return pieces


def chunk_document(doc: Document, size: int, overlap: int = 0, *, measure: Measure | None = None,
                   min_size: int | None = None) -> list[Span]:
    """Return the chunk spans of ``doc``.

    Args:
        doc: The parsed document.
        size: Maximum chunk size in ``measure`` units.
        overlap: Units repeated from the end of a chunk at the start of the next one
            (within one section); must be smaller than ``size``.
        measure: Character or token measure (characters by default).
        min_size: A chunk ends at a section change only once it holds this many units;
            defaults to ``size // 4``.
    """
    if size <= 0:
        raise ValueError(f"chunk_size must be positive, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk_overlap must be >= 0 and smaller than chunk_size ({size}), got {overlap}")
    measure = measure or Measure("chars")
    min_size = size // 4 if min_size is None else min_size
    text = doc.text
    # pieces of an oversized block leave room for the overlap carried into the next chunk
    pieces = [p for block in doc.blocks for p in _split_block(text, block, size - overlap, measure)]
    chunks: list[Span] = []
    current: Span | None = None
    for piece in pieces:
        if current is None:
            current = Span(piece.start, piece.end, piece.section)
            continue
        if piece.section != current.section and measure.count(text[current.start:current.end]) >= min_size:
            chunks.append(current)
            current = Span(piece.start, piece.end, piece.section)
        elif measure.count(text[current.start:piece.end]) <= size:
            current.end = piece.end
        else:
            chunks.append(current)
            start = piece.start
            if overlap and piece.section == current.section:
                tail = current.start + measure.tail(text[current.start:current.end], overlap)
                tail = _word_start(text, tail, current.end)
                if tail < current.end and measure.count(text[tail:piece.end]) <= size:
                    start = tail
            current = Span(start, piece.end, piece.section)
    if current is not None:
        chunks.append(current)
    return chunks


def _word_start(text: str, pos: int, limit: int) -> int:
    """Move ``pos`` forward to the start of a word (never past ``limit``)."""
    if pos > 0 and not text[pos - 1].isspace():
        match = re.compile(r"\s+").search(text, pos, limit)
        pos = match.end() if match else limit
    while pos < limit and text[pos].isspace():
        pos += 1
    return pos
