"""Ingest pipeline on real files the tests write: keys across folders, binary and encoded files,
the same document in three formats, and migration of databases with old-style keys."""

import logging
import random
import textwrap
from pathlib import Path

import lancedb
import pytest

from synthrun.ingest import store
from synthrun.ingest.pipeline import ingest
from synthrun.stage import StageError
from tests.ingest.make_fixture_pdf import build as build_pdf


def _rows(db: Path, table: str = "text_chunks") -> list[dict]:
    return lancedb.connect(str(db)).open_table(table).to_arrow().to_pylist()


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


def test_same_basename_folders_do_not_overwrite_each_other(tmp_path):
    a = _write(tmp_path / "a" / "docs" / "notes.md", "# Alpha\n\nAlpha notes about the cache size.\n").parent
    b = _write(tmp_path / "b" / "docs" / "notes.md", "# Beta\n\nBeta notes about compression filters.\n").parent
    db = tmp_path / "db"
    ingest([a], db)
    report = ingest([b], db)
    assert report.deleted_chunks == 0 and report.changed == 1
    rows = _rows(db)
    assert sorted(r["text"] for r in rows) == [
        "# Alpha\n\nAlpha notes about the cache size.", "# Beta\n\nBeta notes about compression filters."]
    assert {r["source"] for r in rows} == {"docs/notes.md"}  # the display name stays short
    assert len({r["source_key"] for r in rows}) == 2 and len({r["id"] for r in rows}) == len(rows)
    # re-ingesting either folder changes nothing; prune only looks at the folder given
    again = ingest([a], db, prune=True)
    assert (again.unchanged, again.changed, again.deleted_chunks) == (1, 0, 0)
    (b / "notes.md").unlink()
    pruned = ingest([a], db, prune=True)
    assert pruned.deleted_chunks == 0 and len(_rows(db)) == len(rows)
    pruned = ingest([b], db, prune=True)
    assert pruned.deleted_chunks > 0 and all("Beta" not in r["text"] for r in _rows(db))
    assert any("Alpha notes" in r["text"] for r in _rows(db))


def test_old_keys_are_migrated_without_rechunking(tmp_path):
    a = _write(tmp_path / "a" / "docs" / "notes.md", "# Alpha\n\nAlpha notes.\n").parent
    b = _write(tmp_path / "b" / "docs" / "notes.md", "# Beta\n\nBeta notes.\n").parent
    new_db = tmp_path / "new"
    ingest([a], new_db)
    # a database as older versions wrote it: no source_key column, no manifest, source = key
    old_db = tmp_path / "old"
    legacy = [{k: v for k, v in r.items() if k != "source_key"} for r in _rows(new_db)]
    conn = lancedb.connect(str(old_db))
    conn.create_table("text_chunks", data=legacy, schema=store.schema())
    report = ingest([a], old_db)
    assert (report.migrated, report.unchanged, report.changed, report.new_chunks) == (1, 1, 0, [])
    rows = _rows(old_db)
    assert [r["id"] for r in rows] == [r["id"] for r in legacy]  # adopted in place, same ids
    assert {r["source_key"] for r in rows} == {r["source_key"] for r in _rows(new_db)}
    # the other folder with the same name no longer collides with the adopted rows
    report = ingest([b], old_db)
    assert report.deleted_chunks == 0 and report.migrated == 0
    assert sorted(r["text"] for r in _rows(old_db)) == ["# Alpha\n\nAlpha notes.", "# Beta\n\nBeta notes."]
    assert ingest([a, b], old_db).unchanged == 2


def test_old_key_of_a_single_file_input_is_migrated(tmp_path):
    single = _write(tmp_path / "solo" / "guide.md", "# Guide\n\nOne file given on its own.\n")
    new_db = tmp_path / "new"
    ingest([single], new_db)
    old_db = tmp_path / "old"
    legacy = [{k: v for k, v in r.items() if k != "source_key"} for r in _rows(new_db)]
    assert {r["source"] for r in legacy} == {"guide.md"}
    lancedb.connect(str(old_db)).create_table("text_chunks", data=legacy, schema=store.schema())
    report = ingest([single], old_db, prune=True)
    assert (report.migrated, report.unchanged, report.deleted_chunks) == (1, 1, 0)
    assert [r["source_key"] for r in _rows(old_db)] == [r["source_key"] for r in _rows(new_db)]


def test_binary_and_encoded_files(tmp_path, caplog):
    rng = random.Random(7)
    docs = tmp_path / "docs"
    _write(docs / "random.txt", rng.randbytes(4000))
    _write(docs / "program.txt", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"GCC: (Debian) text inside" * 40)
    _write(docs / "nul.md", b"# Title\n\nsome text\x00\x00\x01\x02 more")
    _write(docs / "short_random.txt", bytes(rng.randrange(128, 256) for _ in range(200)) + b"\x01\x02\x03" * 20)
    windows = "Résumé of the chunk cache\r\n\r\nThe cache holds 1 MiB — 日本語 too.\r\n"
    _write(docs / "utf16.txt", b"\xff\xfe" + windows.encode("utf-16-le"))
    _write(docs / "utf16be.txt", "Big endian text: naïve café.\n".encode("utf-16-be"))  # no BOM
    _write(docs / "utf32.txt", "UTF-32 text with a BOM: Ωmega.\n".encode("utf-32"))
    mixed = "# Résumé 日本語\n\nCafé 😀 stays intact; one bad byte: caf".encode() + b"\xe9" + b" here.\n"
    _write(docs / "mixed.md", mixed)
    _write(docs / "latin1.txt", "Une phrase en Latin-1: déjà vu à l'été.\n".encode("latin-1"))

    db = tmp_path / "db"
    with caplog.at_level(logging.WARNING, logger="synthrun.ingest"):
        report = ingest([docs], db)
    assert report.skipped == {
        "docs/random.txt": "binary (NUL bytes)", "docs/program.txt": "binary (ELF executable)",
        "docs/nul.md": "binary (NUL bytes)",
        "docs/short_random.txt": report.skipped["docs/short_random.txt"]}
    assert report.skipped["docs/short_random.txt"].startswith(("binary", "not text"))
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 4
    rows = {r["source"]: r for r in _rows(db)}
    assert set(rows) == {"docs/utf16.txt", "docs/utf16be.txt", "docs/utf32.txt", "docs/mixed.md", "docs/latin1.txt"}
    text = {s: "\n".join(r["text"] for r in _rows(db) if r["source"] == s) for s in rows}
    assert text["docs/utf16.txt"] == "Résumé of the chunk cache\n\nThe cache holds 1 MiB — 日本語 too."
    assert text["docs/utf16be.txt"] == "Big endian text: naïve café."
    assert text["docs/utf32.txt"] == "UTF-32 text with a BOM: Ωmega."
    assert "Café 😀 stays intact; one bad byte: café here." in text["docs/mixed.md"]
    assert rows["docs/mixed.md"]["title"] == "Résumé 日本語"
    assert text["docs/latin1.txt"] == "Une phrase en Latin-1: déjà vu à l'été."
    assert report.repaired == {"docs/mixed.md": 1}
    assert report.encodings == {"docs/utf16.txt": "utf-16-le", "docs/utf16be.txt": "utf-16-be",
                                "docs/utf32.txt": "utf-32-le", "docs/latin1.txt": "cp1252"}
    assert all("\x00" not in r["text"] for r in _rows(db))


def test_a_file_that_turned_binary_keeps_what_was_stored(tmp_path):
    docs = _write(tmp_path / "docs" / "a.txt", "Plain text that was ingested once.\n").parent
    db = tmp_path / "db"
    ingest([docs], db)
    (docs / "a.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64)
    report = ingest([docs], db)
    assert report.skipped == {"docs/a.txt": "binary (ELF executable)"} and report.deleted_chunks == 0
    assert [r["text"] for r in _rows(db)] == ["Plain text that was ingested once."]


PARAGRAPHS = [
    "Chunked storage splits an HDF5 dataset into equal blocks that the library reads and writes "
    "as a unit. Chunking is required for compression, for resizable datasets and for filters.",
    "A chunk should hold between ten kilobytes and one megabyte of data. Chunks that are too small "
    "add overhead to every read, and chunks that are too large force the library to read data "
    "that the program does not need at all.",
    "Each open dataset has a chunk cache of one megabyte by default. When the working set of chunks "
    "does not fit into the cache, the same chunk is decompressed again and again, which is slow.",
    "Raise the rdcc_nbytes setting when opening the file if a program reads many chunks across a "
    "row of the dataset, and choose a chunk shape that follows the usual access pattern.",
]


def _same_doc_three_ways(folder: Path) -> None:
    rst = "Chunked storage\n===============\n\n" + "\n\n".join(PARAGRAPHS) + "\n"
    _write(folder / "_sources" / "chunking.rst.txt", rst)
    body = "".join(f"<p>{p}</p>\n" for p in PARAGRAPHS)
    _write(folder / "chunking.html", f"<html><head><title>Chunked storage</title></head><body>"
                                     f"<h1>Chunked storage</h1>\n{body}</body></html>")
    lines = ["Chunked storage", ""]
    for p in PARAGRAPHS:
        lines += [*textwrap.wrap(p, 70), ""]
    appendix = ["Appendix: only in the manual", "",
                *textwrap.wrap("The printed manual also lists every error code that the chunk "
                               "index raises together with the recovery steps an operator takes.", 70)]
    _write(folder / "manual.pdf", build_pdf([lines, appendix], "Manual"))


def test_same_document_as_html_rst_and_pdf_is_stored_once(tmp_path):
    docs = tmp_path / "docs"
    _same_doc_three_ways(docs)
    db = tmp_path / "db"
    report = ingest([docs], db, chunk_size=400, chunk_overlap=0)
    rows = _rows(db)
    sources = {r["source"] for r in rows}
    assert "docs/_sources/chunking.rst.txt" in sources and "docs/chunking.html" not in sources
    assert report.duplicate_files == {"docs/chunking.html": "duplicate of docs/_sources/chunking.rst.txt"}
    pdf_rows = [r for r in rows if r["source"] == "docs/manual.pdf"]
    assert pdf_rows and all("chunk cache of one megabyte" not in r["text"] for r in pdf_rows)
    assert any("error code" in r["text"] for r in pdf_rows)  # what only the PDF says is kept
    assert report.duplicates["exact_chunks"] > 0 and report.duplicates["near_chunks"] > 0
    for p in PARAGRAPHS:  # every paragraph is stored exactly once
        head = p[:40]
        assert sum(head in " ".join(r["text"].split()) for r in rows) == 1, head
    # re-ingest: nothing to do, the duplicate file is remembered as ingested
    again = ingest([docs], db, chunk_size=400, chunk_overlap=0)
    assert (again.unchanged, again.changed, len(again.new_chunks)) == (3, 0, 0)

    plain = tmp_path / "plain"
    off = ingest([docs], plain, chunk_size=400, chunk_overlap=0, dedup=False)
    assert {r["source"] for r in _rows(plain)} == {"docs/_sources/chunking.rst.txt", "docs/chunking.html",
                                                    "docs/manual.pdf"}
    assert off.duplicates == {"exact_chunks": 0, "near_chunks": 0}


def test_db_that_is_a_regular_file_is_a_one_line_error(tmp_path):
    docs = _write(tmp_path / "docs" / "a.md", "# A\n\ntext\n").parent
    db = _write(tmp_path / "db.lancedb", "not a database")
    with pytest.raises(StageError, match=r"db\.lancedb is a regular file, not a database folder") as exc:
        ingest([docs], db)
    assert "\n" not in str(exc.value)
    assert db.read_text() == "not a database"  # nothing destroyed
    with pytest.raises(StageError, match="regular file"):
        store.connect(db)
