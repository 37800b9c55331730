"""Sniffing file bytes: binary formats, byte order marks, per-byte repair of broken UTF-8."""

import codecs
import random

import pytest

from synthrun.ingest.sniff import BinaryFile, decode_text, sniff


@pytest.mark.parametrize("data, reason", [
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 40, "binary (ELF executable)"),
    (b"PK\x03\x04" + b"zipped", "binary (ZIP archive)"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 8, "binary (PNG image)"),
    (b"\x1f\x8b\x08\x00", "binary (gzip archive)"),
    (b"MZ\x90\x00\x03\x00\x00\x00", "binary (Windows executable)"),
    (b"SQLite format 3\x00rest", "binary (SQLite database)"),
    (b"text with a NUL \x00 inside and more words", "binary (NUL bytes)"),
    (b"\x01\x02\x03\x04\x05\x06 short control soup \x07\x08\x0e\x0f" * 3, None),  # reason checked below
])
def test_binary_files_get_a_reason(data, reason):
    got = sniff(data, "text")
    assert got is not None and (reason is None or got == reason), got


def test_text_that_merely_looks_odd_is_text():
    assert sniff(b"MZ is the start of this sentence, not an executable.\n", "text") is None
    assert sniff("déjà vu\tand\x1b[1mbold\x1b[0m\f\n".encode(), "text") is None
    assert sniff(b"%PDF-1.7 rest", "pdf") is None and sniff(b"no header", "pdf") == "not a PDF (no %PDF header)"
    assert sniff(random.Random(1).randbytes(300).replace(b"\x00", b"a"), "text") is not None


@pytest.mark.parametrize("encoding, bom", [
    ("utf-8", codecs.BOM_UTF8), ("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
    ("utf-32-le", codecs.BOM_UTF32_LE), ("utf-32-be", codecs.BOM_UTF32_BE),
])
def test_byte_order_marks(encoding, bom):
    text = "Ünïcode 日本語 😀\r\nline two"
    got = decode_text(bom + text.encode(encoding))
    assert (got.text, got.encoding, got.repaired) == ("Ünïcode 日本語 😀\nline two", encoding, 0)


def test_broken_bytes_are_repaired_one_by_one():
    data = "Résumé 日本語 😀 ".encode() + b"caf\xe9 \x81 and " + "naïve".encode()
    got = decode_text(data)
    assert got.text == "Résumé 日本語 😀 café \ufffd and naïve" and got.repaired == 2
    assert decode_text("déjà vu à l'été".encode("cp1252")).text == "déjà vu à l'été"  # no UTF-8 at all
    with pytest.raises(BinaryFile):
        decode_text(bytes(range(0x80, 0x100)) * 4, strict=True)
