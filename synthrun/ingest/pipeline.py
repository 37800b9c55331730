"""Folder of documents -> chunk rows in LanceDB, incrementally.

Each file is keyed by ``<root id>:<path inside the root>``, where the root id is a hash of the
resolved input folder, so two folders with the same name never overwrite each other. A
manifest table (:data:`store.MANIFEST`) records each file's hash and chunking settings; a file
whose hash and settings match is skipped, so re-ingesting an unchanged folder writes nothing.
A changed file has all its old rows replaced.

Before a file is read its bytes are sniffed (:mod:`synthrun.ingest.sniff`): binary files are
skipped with a reason; text is decoded by BOM, and broken UTF-8 bytes are repaired one by one.
Chunks repeating text already kept from another file (the same page as HTML, reST source and
PDF) are dropped (:mod:`synthrun.ingest.duplicates`).

Databases written before keys existed used ``<folder name>/<path>``; the first ingest of a
folder with that name adopts those rows (renamed in place when the file is unchanged).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from synthrun.ingest import store
from synthrun.ingest.chunking import chunk_document
from synthrun.ingest.readers import detect_format, read_bytes
from synthrun.ingest.tokens import Measure, Unit
from synthrun.records import Chunk, stable_id

log = logging.getLogger("synthrun.ingest")

DEFAULT_EXCLUDE = ["_static/*", "*/_static/*", "_build/*", "*/_build/*", "*.min.js", "searchindex.js"]
_ALWAYS_SKIPPED_DIRS = {"__pycache__", "node_modules", ".git", ".hg", ".svn"}
#: Bumped when chunking changes in a way that should re-chunk every file.
CHUNKER_VERSION = 1
_KEY_RE = re.compile(r"^[0-9a-f]{12}:")


def root_id(folder: Path) -> str:
    """A short stable id of a resolved folder (the first part of every file key under it)."""
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]


@dataclass
class SourceFile:
    """A file found under an input root.

    Attributes:
        path: The file.
        source: Display name ``<root name>/<path inside root>`` (a single file: its name).
        format: Reader format.
        language: Programming language of a code file.
        key: Identity in the database, ``<root id>:<path inside root>``.
        legacy_key: The key older versions used (the ``source``).
    """

    path: Path
    source: str
    format: str
    language: str
    key: str = ""
    legacy_key: str = ""


@dataclass
class IngestReport:
    """What one ingest did."""

    files: int = 0
    unchanged: int = 0
    changed: int = 0
    unsupported: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=lambda: {"exact_chunks": 0, "near_chunks": 0})
    duplicate_files: dict[str, str] = field(default_factory=dict)
    migrated: int = 0
    new_chunks: list[Chunk] = field(default_factory=list)
    deleted_chunks: int = 0
    table_rows: dict[str, int] = field(default_factory=dict)


def _matches(rel: str, patterns: Iterable[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch(rel, p) or fnmatch(name, p) for p in patterns)


def discover(roots: Iterable[str | Path], include: list[str] | None = None,
             exclude: list[str] | None = None) -> tuple[list[SourceFile], int]:
    """Find the supported files under ``roots`` (folders or single files), sorted.

    Args:
        roots: Folders searched recursively, or single files.
        include: Glob patterns (on the path inside the root, or the file name); None = all.
        exclude: Glob patterns of files to skip; hidden files and folders are always skipped.

    Returns:
        The files, and how many candidate files had an unsupported type.
    """
    exclude = DEFAULT_EXCLUDE if exclude is None else exclude
    found: dict[str, SourceFile] = {}
    unsupported = 0
    for root in roots:
        root = Path(root)
        if root.is_file():
            candidates = [(root, root.name, root.name, f"{root_id(root.parent)}:{root.name}")]
        elif root.is_dir():
            candidates = []
            rid = root_id(root)
            for path in sorted(root.rglob("*")):
                rel_parts = path.relative_to(root).parts
                if any(p.startswith(".") or p in _ALWAYS_SKIPPED_DIRS for p in rel_parts):
                    continue
                if path.is_file():
                    rel = "/".join(rel_parts)
                    candidates.append((path, rel, f"{root.resolve().name}/{rel}", f"{rid}:{rel}"))
        else:
            raise FileNotFoundError(f"ingest input not found: {root}")
        for path, rel, source, key in candidates:
            if include and not _matches(rel, include):
                continue
            if _matches(rel, exclude):
                continue
            kind = detect_format(path)
            if kind is None:
                unsupported += 1
                continue
            found.setdefault(key, SourceFile(path, source, *kind, key=key, legacy_key=source))
    return sorted(found.values(), key=lambda f: (f.source, f.key)), unsupported


def chunk_file(file: SourceFile, data: bytes, file_hash: str, *, measure: Measure, size: int, overlap: int,
               min_size: int | None, table: str, chunker: str, text: str | None = None) -> tuple[list[Chunk], list[dict]]:
    """Parse and chunk one file; return its Chunk records and the matching table rows."""
    doc = read_bytes(data, file.path.name, file.format, file.language, text=text)
    spans = chunk_document(doc, size, overlap, measure=measure, min_size=min_size)
    key = file.key or file.source
    chunks, rows = [], []
    for span in spans:
        text = doc.text[span.start:span.end]
        chunk_id = stable_id(key, span.start, span.end, text)
        row = {"id": chunk_id, "text": text, "source": file.source, "kind": doc.kind, "title": doc.title,
               "section": span.section, "start": span.start, "end": span.end, "language": doc.language,
               "file_hash": file_hash, "chunker": chunker, "source_key": key}
        rows.append(row)
        chunks.append(store.chunk_from_row(row, table))
    return chunks, rows


@dataclass
class _Read:
    file: SourceFile
    table: str
    file_hash: str
    chunks: list[Chunk]
    rows: list[dict]


def _read(file: SourceFile, data: bytes, report: IngestReport, **kwargs) -> tuple[list[Chunk], list[dict]] | None:
    """Sniff, decode and chunk one file; None (and the reason in ``report``) when it is skipped or fails."""
    from synthrun.ingest.sniff import decode_text, sniff

    reason = sniff(data, file.format)
    if reason:
        report.skipped[file.source] = reason
        log.warning("ingest: skipped %s: %s", file.path, reason)
        return None
    text = None
    if file.format != "pdf":
        decoded = decode_text(data)
        text = decoded.text
        if decoded.repaired:
            report.repaired[file.source] = decoded.repaired
            log.warning("ingest: %s: repaired %d invalid byte(s)", file.path, decoded.repaired)
        if decoded.encoding != "utf-8":
            report.encodings[file.source] = decoded.encoding
    try:
        return chunk_file(file, data, text=text, **kwargs)
    except Exception as exc:  # one unreadable file must not stop the folder
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        report.failed[file.source] = f"{type(exc).__name__}: {message}"
        log.warning("ingest: cannot read %s: %s", file.path, report.failed[file.source])
        return None


def _drop_duplicates(reads: list[_Read], tables: dict, replaced: dict[str, set[str]], threshold: float,
                     report: IngestReport) -> None:
    """Remove chunks repeating kept text (rows already stored, then files in format order)."""
    from synthrun.ingest.duplicates import FORMAT_ORDER, DuplicateIndex

    index = DuplicateIndex(threshold)
    for name, table in tables.items():
        if table.count_rows():
            arrow = table.to_arrow().select(["text", "source", "source_key"])
            for text, source, key in zip(*(arrow.column(i).to_pylist() for i in range(3)), strict=True):
                if key not in replaced[name]:
                    index.add(text, source)
    for read in sorted(reads, key=lambda r: (FORMAT_ORDER.get(r.file.format, 9), r.file.source)):
        keep_chunks, keep_rows, origin = [], [], Counter()
        for chunk, row in zip(read.chunks, read.rows, strict=True):
            dup = index.check(row["text"], read.file.source)
            if dup is None:
                index.add(row["text"], read.file.source)
                keep_chunks.append(chunk)
                keep_rows.append(row)
            else:
                report.duplicates[f"{dup[0]}_chunks"] += 1
                origin[dup[1]] += 1
        if read.rows and not keep_rows:
            report.duplicate_files[read.file.source] = f"duplicate of {origin.most_common(1)[0][0]}"
        read.chunks, read.rows = keep_chunks, keep_rows


def _gone_files(roots: list[Path], files: list[SourceFile], known: dict[str, Any],
                states: dict[str, dict[str, Any]]) -> set[str]:
    """Keys of stored files under ``roots`` that are no longer there (what ``prune`` deletes)."""
    dir_ids = {root_id(r) for r in roots if r.is_dir()}
    singles = {f"{root_id(r.parent)}:{r.name}" for r in roots if r.is_file()}
    seen = {f.key for f in files}
    stored = set(known) | {k for state in states.values() for k in state if _KEY_RE.match(k)}
    return {k for k in stored if k not in seen and (k.split(":", 1)[0] in dir_ids or k in singles)}


def ingest(roots: Iterable[str | Path], db: str | Path, *, chunk_size: int = 1000, chunk_overlap: int = 100,
           unit: Unit = "chars", min_chunk_size: int | None = None, include: list[str] | None = None,
           exclude: list[str] | None = None, text_table: str = "text_chunks", code_table: str = "code_chunks",
           prune: bool = False, dedup: bool = True, dedup_threshold: float = 0.8,
           progress: Callable[[Iterable[SourceFile]], Iterator[SourceFile]] | None = None) -> IngestReport:
    """Ingest the documents under ``roots`` into the LanceDB database ``db``.

    Args:
        roots: Input folders or files.
        db: LanceDB database folder (created when missing).
        chunk_size: Maximum chunk size in ``unit``.
        chunk_overlap: Overlap between consecutive chunks of a section, in ``unit``.
        unit: ``chars`` or ``tokens`` (MiniLM WordPiece tokens, see :mod:`synthrun.ingest.tokens`).
        min_chunk_size: A section change ends a chunk once it has this many units (default size/4).
        include: Glob patterns of files to ingest (default: every supported type).
        exclude: Glob patterns of files to skip (default :data:`DEFAULT_EXCLUDE`).
        text_table: Table for prose chunks.
        code_table: Table for source-code chunks.
        prune: Also delete rows of files that no longer exist under the roots given here.
        dedup: Drop chunks repeating text already kept (see :mod:`synthrun.ingest.duplicates`).
        dedup_threshold: Share of a chunk's word 5-grams found in other files that makes it a duplicate.
        progress: Optional wrapper drawing a progress bar over the files.

    Returns:
        An :class:`IngestReport`; ``new_chunks`` is empty when nothing changed.
    """
    roots = [Path(r) for r in roots]
    measure = Measure(unit)
    chunker = f"{measure.name}/{chunk_size}/{chunk_overlap}/{min_chunk_size}/v{CHUNKER_VERSION}"
    files, unsupported = discover(roots, include, exclude)
    report = IngestReport(files=len(files), unsupported=unsupported)
    conn = store.connect(db, create=True)
    tables = {name: store.open_or_create(conn, name) for name in (text_table, code_table)}
    manifest = store.open_or_create(conn, store.MANIFEST, store.manifest_schema())
    states = {name: store.file_state(t) for name, t in tables.items()}
    known = store.manifest_state(manifest)
    replaced: dict[str, set[str]] = {name: set() for name in tables}
    renamed: dict[str, dict[str, str]] = {name: {} for name in tables}
    claimed: set[str] = set()
    entries: dict[str, dict] = {}
    reads: list[_Read] = []
    for file in (progress or iter)(files):
        table = code_table if file.format == "code" else text_table
        data = file.path.read_bytes()
        file_hash = hashlib.sha256(data).hexdigest()
        entry = {"key": file.key, "source": file.source, "table": table, "file_hash": file_hash,
                 "chunker": chunker, "chunks": 0, "status": "ok"}
        prev = known.get(file.key)
        if prev is not None and (prev["table"], prev["file_hash"], prev["chunker"]) == (table, file_hash, chunker):
            report.unchanged += 1
            continue
        # the file's old rows (in any table: it may have moved) go once the new ones are read
        old = [(name, file.key) for name in tables
               if file.key in states[name] or (prev is not None and prev["table"] == name)]
        legacy = file.legacy_key
        if (prev is None and file.key not in states[table] and legacy and legacy in states[table]
                and not _KEY_RE.match(legacy) and legacy not in renamed[table] and legacy not in claimed):
            claimed.add(legacy)
            report.migrated += 1
            if states[table][legacy] == (file_hash, chunker):
                renamed[table][legacy] = file.key
                rows = tables[table].count_rows(f"source_key = {store.quote(legacy)}")
                entries[file.key] = {**entry, "chunks": rows}
                report.unchanged += 1
                continue
            old.append((table, legacy))
        got = _read(file, data, report, file_hash=file_hash, measure=measure, size=chunk_size,
                    overlap=chunk_overlap, min_size=min_chunk_size, table=table, chunker=chunker)
        if got is None:  # skipped or unreadable: what is stored stays
            continue
        for name, key in old:
            replaced[name].add(key)
        report.changed += 1
        entries[file.key] = entry
        reads.append(_Read(file, table, file_hash, *got))
    if dedup and reads:
        _drop_duplicates(reads, tables, replaced, dedup_threshold, report)
    gone = _gone_files(roots, files, known, states) if prune else set()
    for name in tables:
        replaced[name] |= gone & set(states[name])
    rows_by_table: dict[str, list[dict]] = {name: [] for name in tables}
    for read in reads:
        rows_by_table[read.table].extend(read.rows)
        report.new_chunks.extend(read.chunks)
        entries[read.file.key]["chunks"] = len(read.rows)
        if not read.rows and read.file.source in report.duplicate_files:
            entries[read.file.key]["status"] = "duplicate"
    for name, table in tables.items():
        report.deleted_chunks += store.delete_sources(table, replaced[name] & set(states[name]))
        for old, new in renamed[name].items():
            store.rename_key(table, old, new)
        if rows_by_table[name]:
            table.add(rows_by_table[name])
        report.table_rows[name] = table.count_rows()
    store.delete_sources(manifest, set(entries) | gone, column="key")
    if entries:
        manifest.add(list(entries.values()))
    return report
