"""Chunking by size/overlap over document blocks."""

import pytest

from synthrun.ingest.chunking import chunk_document
from synthrun.ingest.document import Block, Document, TextBuilder
from synthrun.ingest.tokens import Measure


def _doc(paragraphs: list[tuple[str, str]]) -> Document:
    out = TextBuilder()
    for section, text in paragraphs:
        out.add(text, section)
    return Document(text=out.text, blocks=out.blocks)


def test_packs_paragraphs_without_splitting_them():
    doc = _doc([("A", "alpha " * 10), ("A", "beta " * 10), ("A", "gamma " * 10)])
    spans = chunk_document(doc, size=130, overlap=0)
    texts = [doc.text[s.start:s.end] for s in spans]
    assert texts == [("alpha " * 10).strip() + "\n\n" + ("beta " * 10).strip(), ("gamma " * 10).strip()]


def test_oversized_paragraph_splits_at_sentence_or_space_and_overlaps():
    sentence = "HDF5 stores chunks. "
    doc = _doc([("S", sentence * 20)])
    spans = chunk_document(doc, size=100, overlap=30)
    texts = [doc.text[s.start:s.end] for s in spans]
    assert all(len(t) <= 100 for t in texts)
    assert texts[0].endswith("chunks.")  # broke after a sentence
    assert all(b.start < a.end for a, b in zip(spans, spans[1:], strict=False))  # overlap
    assert all(not t[0].isspace() and t.split()[0] in sentence.split() for t in texts)  # starts on a word
    assert spans[-1].end == len(doc.text.rstrip())


def test_section_change_starts_a_chunk_unless_the_current_one_is_tiny():
    doc = _doc([("Title", "T"), ("Title > A", "a" * 60), ("Title > B", "b" * 60), ("Tiny", "z"),
                ("Last", "w" * 10)])
    spans = chunk_document(doc, size=200, overlap=0, min_size=50)
    assert [(s.section, doc.text[s.start:s.end]) for s in spans] == [
        ("Title", "T\n\n" + "a" * 60), ("Title > B", "b" * 60), ("Tiny", "z\n\n" + "w" * 10)]


def test_token_measure_limits_and_offsets():
    measure = Measure("tokens")
    doc = _doc([("", "Chunked datasets are split into equal blocks that compress well. " * 12)])
    spans = chunk_document(doc, size=40, overlap=8, measure=measure)
    assert len(spans) > 2 and all(measure.count(doc.text[s.start:s.end]) <= 40 for s in spans)


def test_blocks_given_by_hand_and_bad_settings():
    doc = Document(text="aaa bbb\n\nccc", blocks=[Block(0, 7, "s"), Block(9, 12, "s")])
    assert [(s.start, s.end) for s in chunk_document(doc, size=100)] == [(0, 12)]
    with pytest.raises(ValueError, match="chunk_overlap"):
        chunk_document(doc, size=10, overlap=10)
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_document(doc, size=0)
