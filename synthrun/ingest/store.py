"""The LanceDB side of ingest: the chunk table schema, writing, and reading back as records."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synthrun.errors import StageError
from synthrun.records import Chunk, Provenance

#: Columns of a chunk table, in order (see :func:`schema`).
COLUMNS = ("id", "text", "source", "kind", "title", "section", "start", "end", "language",
           "file_hash", "chunker", "source_key")
#: Table recording every ingested file (also those whose chunks were all duplicates).
MANIFEST = "_ingest_files"
MANIFEST_COLUMNS = ("key", "source", "table", "file_hash", "chunker", "chunks", "status")


def schema():
    """Return the pyarrow schema of a chunk table (the columns readers rely on)."""
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


def ingest_schema():
    """The schema ingest writes: :func:`schema` plus ``source_key`` (the file's identity)."""
    import pyarrow as pa

    return schema().append(pa.field("source_key", pa.string()))


def manifest_schema():
    """Return the pyarrow schema of the :data:`MANIFEST` table."""
    import pyarrow as pa

    return pa.schema([(c, pa.int64() if c == "chunks" else pa.string()) for c in MANIFEST_COLUMNS])


def connect(db: str | Path, *, create: bool = False):
    """Open the LanceDB database at ``db``; unless ``create``, fail if it does not exist."""
    import lancedb

    path = Path(db)
    if path.exists() and not path.is_dir():
        raise StageError(f"LanceDB database {path} is a regular file, not a database folder; "
                         f"point db= at a folder (a new one is created when missing)")
    if not create and not path.is_dir():
        raise StageError(f"LanceDB database not found: {path}; run `synthrun +recipe=ingest "
                         f"ingest.input_dir=DOCS ingest.db={path}` first")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StageError(f"cannot create LanceDB database {path}: {exc.strerror or exc}") from None
    try:
        return lancedb.connect(str(path))
    except Exception as exc:  # noqa: BLE001 - lancedb raises several kinds; the user needs one line
        raise StageError(f"cannot open LanceDB database {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None


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


def open_or_create(conn, name: str, table_schema=None):
    """Open table ``name``, creating it empty with ``table_schema`` (the chunk schema) when missing.

    A chunk table written before ``source_key`` existed gets the column, filled with its
    ``source`` (the old ``<folder name>/<path>`` key, which ingest then migrates file by file).
    """
    if name in table_names(conn):
        table = conn.open_table(name)
        if table_schema is None and "source_key" not in table.schema.names:
            table.add_columns({"source_key": "source"})
        return table
    return conn.create_table(name, schema=table_schema or ingest_schema())


def quote(value: str) -> str:
    """Quote ``value`` as a SQL string literal for a LanceDB filter."""
    return "'" + value.replace("'", "''") + "'"


def file_state(table) -> dict[str, tuple[str, str]]:
    """Map each source key in ``table`` to its ``(file_hash, chunker)`` as last ingested."""
    if table.count_rows() == 0:
        return {}
    arrow = table.to_arrow().select(["source_key", "file_hash", "chunker"])
    return {s: (h, c) for s, h, c in zip(*(arrow.column(i).to_pylist() for i in range(3)), strict=True)}


def manifest_state(table) -> dict[str, dict[str, Any]]:
    """Map each file key in the manifest table to its row."""
    if table.count_rows() == 0:
        return {}
    return {row["key"]: row for row in table.to_arrow().to_pylist()}


def delete_sources(table, keys: Iterable[str], column: str = "source_key") -> int:
    """Delete every row of ``table`` whose ``column`` is in ``keys``; return how many went."""
    keys = sorted(set(keys))
    if not keys:
        return 0
    before = table.count_rows()
    for i in range(0, len(keys), 200):
        batch = keys[i:i + 200]
        table.delete(f"{column} IN ({', '.join(quote(s) for s in batch)})")
    return before - table.count_rows()


def rename_key(table, old: str, new: str) -> None:
    """Give the rows keyed ``old`` the key ``new`` (migration of an old-style key)."""
    table.update(where=f"source_key = {quote(old)}", values={"source_key": new})


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
