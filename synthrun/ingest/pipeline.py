"""Folder of documents -> chunk rows in LanceDB, incrementally.

Each file is hashed; a file whose hash and chunking settings match what its rows in
the table record is skipped, so re-ingesting an unchanged folder writes nothing. A
changed file has all its old rows replaced.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from synthrun.ingest import store
from synthrun.ingest.chunking import chunk_document
from synthrun.ingest.readers import detect_format, read_bytes
from synthrun.ingest.tokens import Measure, Unit
from synthrun.records import Chunk, stable_id

log = logging.getLogger("synthrun.ingest")

DEFAULT_EXCLUDE = ["_static/*", "*/_static/*", "_build/*", "*/_build/*", "*.min.js"]
_ALWAYS_SKIPPED_DIRS = {"__pycache__", "node_modules", ".git", ".hg", ".svn"}
#: Bumped when chunking changes in a way that should re-chunk every file.
CHUNKER_VERSION = 1


@dataclass
class SourceFile:
    """A file found under an input root; ``source`` is ``<root name>/<path inside root>``."""

    path: Path
    source: str
    format: str
    language: str


@dataclass
class IngestReport:
    """What one ingest did."""

    files: int = 0
    unchanged: int = 0
    changed: int = 0
    unsupported: int = 0
    failed: dict[str, str] = field(default_factory=dict)
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
            candidates = [(root, root.name)]
        elif root.is_dir():
            candidates = []
            for path in sorted(root.rglob("*")):
                rel_parts = path.relative_to(root).parts
                if any(p.startswith(".") or p in _ALWAYS_SKIPPED_DIRS for p in rel_parts):
                    continue
                if path.is_file():
                    candidates.append((path, f"{root.resolve().name}/{'/'.join(rel_parts)}"))
        else:
            raise FileNotFoundError(f"ingest input not found: {root}")
        for path, source in candidates:
            rel = source.split("/", 1)[-1]
            if include and not _matches(rel, include):
                continue
            if _matches(rel, exclude):
                continue
            kind = detect_format(path)
            if kind is None:
                unsupported += 1
                continue
            found.setdefault(source, SourceFile(path, source, *kind))
    return sorted(found.values(), key=lambda f: f.source), unsupported


def chunk_file(file: SourceFile, data: bytes, file_hash: str, *, measure: Measure, size: int, overlap: int,
               min_size: int | None, table: str, chunker: str) -> tuple[list[Chunk], list[dict]]:
    """Parse and chunk one file; return its Chunk records and the matching table rows."""
    doc = read_bytes(data, file.path.name, file.format, file.language)
    spans = chunk_document(doc, size, overlap, measure=measure, min_size=min_size)
    chunks, rows = [], []
    for span in spans:
        text = doc.text[span.start:span.end]
        chunk_id = stable_id(file.source, span.start, span.end, text)
        row = {"id": chunk_id, "text": text, "source": file.source, "kind": doc.kind, "title": doc.title,
               "section": span.section, "start": span.start, "end": span.end, "language": doc.language,
               "file_hash": file_hash, "chunker": chunker}
        rows.append(row)
        chunks.append(store.chunk_from_row(row, table))
    return chunks, rows


def ingest(roots: Iterable[str | Path], db: str | Path, *, chunk_size: int = 1000, chunk_overlap: int = 100,
           unit: Unit = "chars", min_chunk_size: int | None = None, include: list[str] | None = None,
           exclude: list[str] | None = None, text_table: str = "text_chunks", code_table: str = "code_chunks",
           prune: bool = False,
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
        prune: Also delete rows of files that no longer exist under the same roots.
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
    states = {name: store.file_state(t) for name, t in tables.items()}
    rows_by_table: dict[str, list[dict]] = {name: [] for name in tables}
    replaced: dict[str, set[str]] = {name: set() for name in tables}
    for file in (progress or iter)(files):
        table = code_table if file.format == "code" else text_table
        data = file.path.read_bytes()
        file_hash = hashlib.sha256(data).hexdigest()
        if states[table].get(file.source) == (file_hash, chunker):
            report.unchanged += 1
            continue
        try:
            chunks, rows = chunk_file(file, data, file_hash, measure=measure, size=chunk_size,
                                      overlap=chunk_overlap, min_size=min_chunk_size, table=table,
                                      chunker=chunker)
        except Exception as exc:  # one unreadable file must not stop the folder
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            report.failed[file.source] = f"{type(exc).__name__}: {message}"
            log.warning("ingest: cannot read %s: %s", file.path, report.failed[file.source])
            continue
        report.changed += 1
        replaced[table].add(file.source)
        rows_by_table[table].extend(rows)
        report.new_chunks.extend(chunks)
    if prune:
        prefixes = tuple(f"{r.resolve().name}/" for r in roots if r.is_dir())
        singles = {r.name for r in roots if r.is_file()}
        seen = {f.source for f in files}
        for name, state in states.items():
            replaced[name] |= {s for s in state if s not in seen and (s.startswith(prefixes) or s in singles)}
    for name, table in tables.items():
        report.deleted_chunks += store.delete_sources(table, replaced[name] & set(states[name]))
        if rows_by_table[name]:
            table.add(rows_by_table[name])
        report.table_rows[name] = table.count_rows()
    return report
