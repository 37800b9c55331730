"""Write the small text PDF used by the ingest tests (tests/data/docs/mixed/chunked_storage.pdf).

Run ``python tests/ingest/make_fixture_pdf.py`` to regenerate it; the output is deterministic.
The PDF is built by hand (catalog, pages, a Helvetica font and one text stream per page) so no
PDF-writing package is needed.
"""

from __future__ import annotations

from pathlib import Path

TITLE = "Chunked storage in HDF5"
PAGES = [
    [
        "Chunked storage in HDF5",
        "",
        "An HDF5 dataset can be stored contiguously or in chunks.",
        "Chunked layout splits the dataset into equal-sized blocks that are",
        "read and written as a unit, which enables compression and resizing.",
        "",
        "Choosing a chunk shape",
        "",
        "A chunk should hold between 10 KiB and 1 MiB of data. Chunks that",
        "are too small add per-chunk overhead to every read; chunks that are",
        "too large force the library to read data the program does not need.",
    ],
    [
        "The chunk cache",
        "",
        "Each open dataset has a chunk cache of 1 MiB by default. When the",
        "working set of chunks does not fit in the cache, the same chunk is",
        "decompressed again and again. Raise rdcc_nbytes when opening the",
        "file if a program reads many chunks across a dataset row.",
    ],
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def build(pages: list[list[str]] = PAGES, title: str = TITLE) -> bytes:
    """Return the bytes of a PDF with one text stream per page."""
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    info_id = font_id + 1
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(f"{3 + 2 * i} 0 R".encode() for i in range(n_pages))
        + f"] /Count {n_pages} >>".encode(),
    ]
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 11 Tf", "16 TL", "72 740 Td"]
        for line in lines:
            ops.append(f"({_escape(line)}) Tj T*" if line else "T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {4 + 2 * i} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    objects.append(f"<< /Title ({_escape(title)}) /Producer (synthrun test fixture) >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info_id} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / "data" / "docs" / "mixed" / "chunked_storage.pdf"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(build())
    print(target)
