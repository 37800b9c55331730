"""Source stage: read chunks back from the LanceDB tables that ingest wrote."""

from __future__ import annotations

import random
from typing import ClassVar

from pydantic import Field, field_validator

from synthrun.context import StageContext
from synthrun.ingest import store
from synthrun.records import Chunk, Record
from synthrun.stage import Stage, StageError


class LoadChunks(Stage):
    """Load :class:`~synthrun.records.Chunk` records from one or several LanceDB tables.

    Attributes:
        db: Path of the LanceDB database (a folder).
        tables: Tables to read (e.g. ``[text_chunks, code_chunks]``); their rows are unified.
        max_chunks: Keep at most this many chunks (after ``where`` and shuffling); None keeps all.
        where: Optional LanceDB (SQL) filter, e.g. ``"source LIKE '%quick%'"``.
        shuffle: Shuffle before ``max_chunks`` is applied; otherwise chunks come in
            (table, source, start) order.
        seed: Shuffle seed; defaults to the run's seed.
    """

    source: ClassVar[bool] = True
    output_type: ClassVar[type[Record]] = Chunk

    db: str
    tables: list[str] = Field(default_factory=lambda: ["text_chunks"])
    max_chunks: int | None = Field(default=None, ge=0)
    where: str | None = None
    shuffle: bool = False
    seed: int | None = None

    @field_validator("tables", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    def run(self, records: list[Chunk], ctx: StageContext) -> list[Chunk]:
        if not self.tables:
            raise StageError("load: `tables` is empty; name at least one LanceDB table")
        conn = store.connect(self.db)
        chunks: list[Chunk] = []
        per_table: dict[str, int] = {}
        for name in self.tables:
            table = store.open_table(conn, name, self.db)
            query = table.search()
            if self.where:
                query = query.where(self.where)
            try:
                rows = query.limit(None).to_list()
            except Exception as exc:  # lance reports a bad filter as a generic error
                raise StageError(f"load: bad `where` filter {self.where!r} on table '{name}': "
                                 f"{str(exc).splitlines()[0]}") from None
            rows.sort(key=lambda r: (r.get("source") or "", r.get("start") or 0, r["id"]))
            per_table[name] = len(rows)
            chunks.extend(store.chunk_from_row(row, name) for row in rows)
        if not chunks:
            empty = ", ".join(f"'{n}'" for n in self.tables)
            why = f" match the filter `where: {self.where}`" if self.where else ""
            raise StageError(f"load: no chunks{why} in table{'s' if len(self.tables) > 1 else ''} {empty} "
                             f"of {self.db}" + ("" if why else "; the table is empty (ingest documents into it "
                                                              "with `synthrun +recipe=ingest ingest.input_dir=DOCS`)"))
        if self.shuffle:
            random.Random(ctx.seed if self.seed is None else self.seed).shuffle(chunks)
        if self.max_chunks is not None:
            chunks = chunks[: self.max_chunks]
        ctx.summary.update({"db": str(self.db), "rows_per_table": per_table, "chunks": len(chunks)})
        return chunks
