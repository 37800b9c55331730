"""Readers per format: text, title, sections and block spans."""

from pathlib import Path

import pytest

from synthrun.ingest.readers import decode, detect_format, read_bytes
from synthrun.ingest.readers.code import read_code
from synthrun.ingest.readers.html import read_html
from synthrun.ingest.readers.markdown import read_markdown
from synthrun.ingest.readers.rst import read_rst

DOCS = Path(__file__).resolve().parents[1] / "data" / "docs"


def _blocks(doc):
    return [(b.section, doc.text[b.start:b.end]) for b in doc.blocks]


@pytest.mark.parametrize("name,expected", [
    ("a.md", ("markdown", "")), ("index.rst.txt", ("rst", "")), ("x.TXT", ("text", "")),
    ("p.htm", ("html", "")), ("d.pdf", ("pdf", "")), ("m.cpp", ("code", "c++")), ("h.h", ("code", "c")),
    ("s.py", ("code", "python")), ("img.png", None), ("Makefile", None),
])
def test_detect_format(name, expected):
    assert detect_format(name) == expected


def test_rst_sphinx_markup_is_tolerated():
    text = """Title
=====

.. automodule:: h5py.h5f
   :members:

.. autoclass:: FileID
   :show-inheritance:

Intro with :func:`~h5py.h5f.open`, :ref:`guide <quick>`, :pr:`7` and :nosuchrole:`kept`.

.. toctree::
   :maxdepth: 2

   hidden_page

Sub
---

.. function:: open(name, flags=ACC_RDONLY)

   Open an existing file.

   :param name: File name.

.. seealso:: :class:`File`

.. totally-unknown:: arg

   Body of an unknown directive.

.. include:: /etc/passwd
"""
    doc = read_rst(text)
    assert doc.title == "Title"
    assert _blocks(doc) == [
        ("Title", "Title"),
        ("Title", "automodule h5py.h5f"),
        ("Title", "autoclass FileID"),
        ("Title", "Intro with open, guide, #7 and :nosuchrole:`kept`."),
        ("Title > Sub", "Sub"),
        ("Title > Sub", "function open(name, flags=ACC_RDONLY)"),
        ("Title > Sub", "Open an existing file."),
        ("Title > Sub", "param name: File name."),
        ("Title > Sub", "See also: File"),
        ("Title > Sub", ".. totally-unknown:: arg\n\n   Body of an unknown directive."),
    ]
    assert "hidden_page" not in doc.text and "root:" not in doc.text


def test_markdown_blocks_are_spans_of_the_file():
    text = (DOCS / "notes" / "compression.md").read_text()
    doc = read_markdown(text)
    assert doc.text == text and doc.title == "Compression filters"
    assert _blocks(doc)[:4] == [
        ("Compression filters", "# Compression filters"),
        ("Compression filters", "HDF5 compresses chunked datasets one chunk at a time."),
        ("Compression filters > Built-in filters", "## Built-in filters"),
        ("Compression filters > Built-in filters", "- **gzip**: available everywhere, levels 0 to 9."),
    ]
    fence = [t for s, t in _blocks(doc) if t.startswith("```")]
    assert fence == ['```python\nf.create_dataset("x", (1000,), compression="gzip", compression_opts=4)\n```']


def test_markdown_front_matter_title():
    doc = read_markdown("---\ntitle: My notes\n---\n\n## Part\n\nText.\n")
    assert doc.title == "My notes" and _blocks(doc) == [("Part", "## Part"), ("Part", "Text.")]


def test_html_drops_chrome_and_keeps_structure():
    doc = read_html((DOCS / "mixed" / "attributes.html").read_text())
    assert doc.title == "Attributes"
    blocks = _blocks(doc)
    assert ("Attributes > Reading and writing", "- Attributes should stay small: under 64 KiB each.") in blocks
    assert ("Attributes > Types", "Python value | Stored as\nint | 64-bit integer\nstr | variable-length UTF-8 string") \
        in blocks
    assert ("Attributes > Reading and writing",
            "Every object has an attrs proxy that behaves like a dictionary.") in blocks
    assert all(word not in doc.text for word in ("console.log", "font-family", "Home", "test suite"))


def test_pdf_pages_become_sections():
    doc = read_bytes((DOCS / "mixed" / "chunked_storage.pdf").read_bytes(), "c.pdf", "pdf")
    assert doc.title == "Chunked storage in HDF5"
    assert _blocks(doc)[0] == ("page 1", "Chunked storage in HDF5")
    assert ("page 2", "The chunk cache") in _blocks(doc)


def test_code_sections_follow_definitions():
    py = read_code((DOCS / "mixed" / "read_dataset.py").read_text(), "read_dataset.py", "python")
    assert py.kind == "code" and py.language == "python"
    assert [s for s, t in _blocks(py) if t.startswith(("def ", "class "))] == ["def read_rows", "class AttributeDumper"]
    dump = [(s, t) for s, t in _blocks(py) if "def dump" in t]
    assert dump == [("class AttributeDumper", '    def dump(self):\n        with h5py.File(self.path, "r") as f:\n'
                     '            f.visititems(lambda name, obj: print(name, dict(obj.attrs)))')]
    c = read_code((DOCS / "mixed" / "write_chunks.c").read_text(), "write_chunks.c", "c")
    assert [s for s, _ in _blocks(c)] == ["", "", "make_chunked_plist()", "main()", "main()"]


def test_decode_handles_bom_latin1_and_crlf():
    assert decode("\ufeffa\r\nb".encode()) == "a\nb"
    assert decode("café".encode("latin-1")) == "café"
