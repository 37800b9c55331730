"""The LanceDB side of ingest: the chunk table schema, writing, and reading back as records."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synthrun.records import Chunk, Provenance
from synthrun.stage import StageError

#: Columns of a chunk table, in order (see :func:`schema`).
COLUMNS = ("id", "text", "source", "kind", "title", "section", "start", "end", "language",
           "file_hash", "chunker")


def schema():
    """Return the pyarrow schema of a chunk table."""
    import pyarrow as pa

    return pa.schema([
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("kind", pa.string()),
        ("title", pa.string()),
        ("section", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("language", pa.string()),
        ("file_hash", pa.string()),
        ("chunker", pa.string()),
    ])


def connect(db: str | Path, *, create: bool = False):
    """Open the LanceDB database at ``db``; unless ``create``, fail if it does not exist."""
    import lancedb

    path = Path(db)
    if not create and not path.is_dir():
        raise StageError(f"LanceDB database not found: {path}; run `synthrun +recipe=ingest "
                         f"ingest.input_dir=DOCS ingest.db={path}` first")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return lancedb.connect(str(path))


def table_names(conn) -> list[str]:
    """Return the table names of a LanceDB connection (across lancedb versions)."""
    if hasattr(conn, "list_tables"):
        listed = conn.list_tables()
        names = getattr(listed, "tables", listed)
        token = getattr(listed, "page_token", None)
        names = list(names)
        while token:
            listed = conn.list_tables(page_token=token)
            names += list(listed.tables)
            token = listed.page_token
        return names
    return list(conn.table_names())


def open_table(conn, name: str, db: str | Path):
    """Open table ``name`` or raise a one-line :class:`StageError` telling how to create it."""
    if name not in table_names(conn):
        raise StageError(f"LanceDB table '{name}' not found in {db}; run `synthrun +recipe=ingest "
                         f"ingest.input_dir=DOCS ingest.db={db}` first")
    return conn.open_table(name)


def open_or_create(conn, name: str):
    """Open table ``name``, creating it empty with the chunk schema when missing."""
    if name in table_names(conn):
        return conn.open_table(name)
    return conn.create_table(name, schema=schema())


def quote(value: str) -> str:
    """Quote ``value`` as a SQL string literal for a LanceDB filter."""
    return "'" + value.replace("'", "''") + "'"


def file_state(table) -> dict[str, tuple[str, str]]:
    """Map each source in ``table`` to its ``(file_hash, chunker)`` as last ingested."""
    if table.count_rows() == 0:
        return {}
    arrow = table.to_arrow().select(["source", "file_hash", "chunker"])
    return {s: (h, c) for s, h, c in zip(*(arrow.column(i).to_pylist() for i in range(3)), strict=True)}


def delete_sources(table, sources: Iterable[str]) -> int:
    """Delete every row of ``table`` whose source is in ``sources``; return how many went."""
    sources = sorted(set(sources))
    if not sources:
        return 0
    before = table.count_rows()
    for i in range(0, len(sources), 200):
        batch = sources[i:i + 200]
        table.delete(f"source IN ({', '.join(quote(s) for s in batch)})")
    return before - table.count_rows()


def chunk_from_row(row: dict[str, Any], table: str) -> Chunk:
    """Build a :class:`Chunk` record from a table row."""
    return Chunk(
        id=row["id"],
        text=row["text"],
        source=row.get("source") or "",
        table=table,
        kind=row.get("kind") or "text",
        title=row.get("title") or "",
        section=row.get("section") or "",
        start=int(row.get("start") or 0),
        end=int(row.get("end") or 0),
        language=row.get("language") or "",
        provenance=Provenance(chunk_id=row["id"], source=row.get("source") or None),
    )
