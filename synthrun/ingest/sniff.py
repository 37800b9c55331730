"""Look at a file's bytes before reading it: binary or text, and how to decode the text.

* Binary files are recognised by their magic number (ELF, PE, Mach-O, ZIP, gzip, PNG, ...), by
  NUL bytes that are not UTF-16 text, or by a high share of control characters / invalid bytes.
* A byte order mark picks UTF-8, UTF-16 or UTF-32; UTF-16 without a BOM is recognised by its
  NUL-interleaved ASCII.
* UTF-8 with a few invalid bytes keeps every valid character: only the broken bytes are repaired
  (read as Windows-1252 when that maps them to a printable character, else U+FFFD) and counted.
  A file with no valid multi-byte UTF-8 at all is a legacy 8-bit file; charset-normalizer picks
  its code page.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

#: Leading bytes of binary formats -> name shown in the skip reason.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "ELF executable"),
    (b"MZ", "Windows executable"),
    (b"\xca\xfe\xba\xbe", "Mach-O/Java class"),
    (b"\xcf\xfa\xed\xfe", "Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "Mach-O executable"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"BZh", "bzip2 archive"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "7z archive"),
    (b"\x28\xb5\x2f\xfd", "zstd archive"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"RIFF", "RIFF media"),
    (b"OggS", "Ogg media"),
    (b"\x89HDF\r\n\x1a\n", "HDF5 file"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"%PDF-", "PDF document"),
    (b"\x00asm", "WebAssembly module"),
)
_BOMS: tuple[tuple[bytes, str], ...] = (  # UTF-32 first: its LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_TEXT_CONTROLS = set(b"\t\n\r\f\v\x1b")
SAMPLE = 8192


class BinaryFile(Exception):
    """The file is not text; the message is the reason (``binary (ELF executable)``)."""


@dataclass
class Decoded:
    """Text of a file and how it was obtained."""

    text: str
    encoding: str
    repaired: int = 0  # invalid bytes replaced


def _repair(err: UnicodeDecodeError) -> tuple[str, int]:
    bad = err.object[err.start:err.end]
    out = []
    for b in bad:
        ch = bytes([b]).decode("cp1252", errors="replace")
        out.append(ch if ch.isprintable() and ch != "\ufffd" else "\ufffd")
    _COUNT[0] += len(bad)
    return "".join(out), err.end


_COUNT = [0]
codecs.register_error("synthrun-repair", _repair)


def magic(data: bytes) -> str | None:
    """The binary format ``data`` starts with, if any."""
    for sig, name in MAGIC:
        if data.startswith(sig):
            if sig == b"MZ" and b"\x00" not in data[:512]:
                return None  # a text file that happens to start with "MZ"
            return name
    return None


def _utf16_without_bom(sample: bytes) -> str | None:
    """``utf-16-le``/``-be`` when the sample looks like NUL-interleaved text."""
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, chars, name in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros.count(0) >= 0.9 * len(zeros) and chars.count(0) <= 0.05 * len(chars):
            return name
    return None


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_text(data: bytes, *, strict: bool = False) -> Decoded:
    """Decode file bytes (see module docstring); with ``strict``, raise :class:`BinaryFile` for non-text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data[len(bom):].decode(encoding, errors="replace")
            return Decoded(_newlines(text), encoding, text.count("\ufffd"))
    sample = data[:SAMPLE]
    if b"\x00" in sample:
        encoding = _utf16_without_bom(sample)
        if encoding:
            text = data.decode(encoding, errors="replace")
            return Decoded(_newlines(text), encoding, text.count("\ufffd"))
        if strict:
            raise BinaryFile("binary (NUL bytes)")
    if strict and sample:
        controls = sum(1 for b in sample if b < 0x20 and b not in _TEXT_CONTROLS)
        if controls > 0.05 * len(sample):
            raise BinaryFile(f"binary ({controls * 100 // len(sample)}% control bytes)")
    try:
        return Decoded(_newlines(data.decode("utf-8")), "utf-8")
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    has_multibyte = any(ord(c) > 0x7F and c != "\ufffd" for c in lenient)
    if not has_multibyte:  # no valid UTF-8 sequence at all: an 8-bit code page
        high = sum(1 for b in sample if b > 0x7F)
        if strict and high > 0.3 * len(sample):
            raise BinaryFile(f"not text ({high * 100 // len(sample)}% bytes above ASCII, no valid UTF-8)")
        encoding = _legacy_encoding(data)
        text = data.decode(encoding, errors="replace")
        return Decoded(_newlines(text), encoding, text.count("\ufffd"))
    _COUNT[0] = 0
    text = data.decode("utf-8", errors="synthrun-repair")
    repaired = _COUNT[0]
    if strict and repaired > 0.3 * max(1, len(data)):
        raise BinaryFile(f"not text ({repaired * 100 // len(data)}% invalid UTF-8 bytes)")
    return Decoded(_newlines(text), "utf-8", repaired)


def _legacy_encoding(data: bytes) -> str:
    """Windows-1252 (what most 8-bit text is) unless it leaves bytes undefined; then ask charset-normalizer."""
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    return best.encoding if best is not None and best.encoding else "latin-1"


def sniff(data: bytes, fmt: str) -> str | None:
    """The reason to skip a file of format ``fmt`` with contents ``data``, or None when it is readable."""
    if fmt == "pdf":
        return None if b"%PDF" in data[:1024] else "not a PDF (no %PDF header)"
    kind = magic(data)
    if kind:
        return f"binary ({kind})"
    try:
        decode_text(data, strict=True)
    except BinaryFile as exc:
        return str(exc)
    return None
