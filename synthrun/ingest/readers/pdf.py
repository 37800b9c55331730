"""PDF via pypdf: text per page, paragraphs (or lines) as blocks, the page as section."""

from __future__ import annotations

import io

from synthrun.ingest.document import Document, TextBuilder
from synthrun.ingest.readers.text import paragraphs


def read_pdf(data: bytes, name: str = "") -> Document:
    """Extract the text layer of a PDF (scanned pages without text yield nothing)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    out = TextBuilder()
    for number, page in enumerate(reader.pages, 1):
        text = (page.extract_text() or "").replace("\r\n", "\n")
        spans = paragraphs(text)
        if len(spans) <= 1:  # no blank lines in the text layer: break between lines
            spans = [(s, s + len(line.rstrip())) for s, line in _lines(text) if line.strip()]
        out.add_region(text, spans, f"page {number}")
    title = ""
    try:
        title = str((reader.metadata or {}).get("/Title") or "").strip()
    except Exception:  # broken metadata must not stop text extraction
        title = ""
    if not title and out.blocks:
        first = out.text[out.blocks[0].start:out.blocks[0].end]
        title = first if len(first) < 100 else ""
    return Document(text=out.text, title=title, blocks=out.blocks)


def _lines(text: str):
    pos = 0
    for line in text.splitlines(keepends=True):
        yield pos, line
        pos += len(line)
