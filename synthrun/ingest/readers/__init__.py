"""One reader per document format; :func:`read_file` picks it from the file name."""

from __future__ import annotations

from pathlib import Path

from synthrun.ingest.document import Document
from synthrun.ingest.readers.code import LANGUAGES

#: Suffix -> format for the prose formats (code suffixes are in ``LANGUAGES``).
TEXT_FORMATS: dict[str, str] = {
    ".md": "markdown", ".markdown": "markdown", ".mdown": "markdown",
    ".rst": "rst", ".rest": "rst", ".rst.txt": "rst",
    ".txt": "text", ".text": "text",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf",
}


def detect_format(path: str | Path) -> tuple[str, str] | None:
    """Return ``(format, language)`` for a file name, or None when it is not a supported kind."""
    name = Path(path).name.lower()
    for suffix in sorted(TEXT_FORMATS, key=len, reverse=True):  # `.rst.txt` before `.txt`
        if name.endswith(suffix):
            return TEXT_FORMATS[suffix], ""
    suffix = Path(name).suffix
    if suffix in LANGUAGES:
        return "code", LANGUAGES[suffix]
    return None


def decode(data: bytes) -> str:
    """Decode file bytes (BOM-aware, broken UTF-8 bytes repaired; see :mod:`synthrun.ingest.sniff`)."""
    from synthrun.ingest.sniff import decode_text

    return decode_text(data).text


def read_bytes(data: bytes, name: str, fmt: str, language: str = "", text: str | None = None) -> Document:
    """Parse file contents ``data`` of format ``fmt`` (as given by :func:`detect_format`).

    ``text`` is the already decoded ``data`` when the caller has it (ignored for PDF).
    """
    if fmt == "pdf":
        from synthrun.ingest.readers.pdf import read_pdf

        return read_pdf(data, name)
    text = decode(data) if text is None else text
    if fmt == "rst":
        from synthrun.ingest.readers.rst import read_rst

        return read_rst(text, name)
    if fmt == "markdown":
        from synthrun.ingest.readers.markdown import read_markdown

        return read_markdown(text, name)
    if fmt == "html":
        from synthrun.ingest.readers.html import read_html

        return read_html(text, name)
    if fmt == "code":
        from synthrun.ingest.readers.code import read_code

        return read_code(text, name, language)
    from synthrun.ingest.readers.text import read_text

    return read_text(text, name)
