"""Source stage: turn a folder of documents into LanceDB chunk tables."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from synthrun.context import StageContext
from synthrun.paths import data_dir
from synthrun.records import Chunk, Record
from synthrun.stage import Stage, StageError


def resolve_input(path: str | Path) -> Path:
    """Resolve an input path; ``recipes/...``, ``conf/...`` or ``prompts/...`` that do not exist
    relative to the working directory are looked up in the installed project data."""
    path = Path(path).expanduser()
    if path.exists() or path.is_absolute():
        return path
    head, *rest = path.parts or ("",)
    if head in ("recipes", "conf", "prompts"):
        shipped = data_dir(head).joinpath(*rest)
        if shipped.exists():
            return shipped
    return path


class Ingest(Stage):
    """Chunk Markdown, reST, plain text, HTML, PDF and source code into LanceDB.

    Prose goes to ``text_table``, code to ``code_table``. Chunk ids are stable and files
    are hashed, so re-ingesting an unchanged folder writes nothing (``new_chunks == 0``)
    and a changed file replaces its old chunks. Returns the chunks written by this run.

    Attributes:
        input_dir: A folder (searched recursively) or file, or a list of them.
        db: LanceDB database folder (created when missing).
        chunk_size: Maximum chunk size, in ``unit``.
        chunk_overlap: Overlap between consecutive chunks of a section, in ``unit``.
        unit: ``chars`` or ``tokens`` (all-MiniLM-L6-v2 WordPiece tokens, counted offline).
        min_chunk_size: A new section starts a new chunk once the current one has this
            many units; default ``chunk_size // 4`` (smaller sections are merged).
        include: Glob patterns of files to ingest, matched against the path inside the
            input folder or the file name (default: every supported type).
        exclude: Glob patterns of files to skip (default skips ``_static``/``_build`` folders).
        text_table: Table receiving prose chunks.
        code_table: Table receiving source-code chunks.
        prune: Delete the chunks of files that disappeared from the input folders given here.
        dedup: Store text repeated across files once (the same page as HTML, reST source and
            PDF): exact and near-duplicate chunks are dropped and counted in the summary.
        dedup_threshold: Share of a chunk's word 5-grams already kept from other files that
            makes it a near duplicate.

    Binary files (by magic number, NUL bytes or control bytes) are skipped and listed under
    ``files_skipped`` with the reason; UTF-16/32 files are read by their BOM; invalid UTF-8
    bytes are repaired one by one (``bytes_repaired``).
    """

    source: ClassVar[bool] = True
    output_type: ClassVar[type[Record]] = Chunk
    #: The documents on disk may change between runs with the same config: a resumed run
    #: should call ``run`` again (it is cheap and a no-op when nothing changed).
    always_run: ClassVar[bool] = True

    input_dir: list[str] | None = None
    db: str
    chunk_size: int = Field(default=1200, gt=0)
    chunk_overlap: int = Field(default=150, ge=0)
    unit: Literal["chars", "tokens"] = "chars"
    min_chunk_size: int | None = Field(default=None, ge=0)
    include: list[str] | None = None
    exclude: list[str] | None = None
    text_table: str = "text_chunks"
    code_table: str = "code_chunks"
    prune: bool = False
    dedup: bool = True
    dedup_threshold: float = Field(default=0.8, gt=0, le=1)

    @field_validator("input_dir", "include", "exclude", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [str(value)] if isinstance(value, (str, Path)) else value

    @model_validator(mode="after")
    def _check(self):
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                             f"chunk_size ({self.chunk_size})")
        if self.text_table == self.code_table:
            raise ValueError("text_table and code_table must differ")
        return self

    def run(self, records: list[Record], ctx: StageContext) -> list[Chunk]:
        from synthrun.ingest.pipeline import ingest

        if not self.input_dir:
            raise StageError("ingest: no documents given; set ingest.input_dir=path/to/docs "
                             "(a folder, a file or a list [docs, src])")
        roots = [resolve_input(p) for p in self.input_dir]
        missing = [str(p) for p in roots if not p.exists()]
        if missing:
            raise StageError(f"ingest: input not found: {', '.join(missing)} (set ingest.input_dir=...)")
        report = ingest(
            roots, self.db, chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap, unit=self.unit,
            min_chunk_size=self.min_chunk_size, include=self.include, exclude=self.exclude,
            text_table=self.text_table, code_table=self.code_table, prune=self.prune, dedup=self.dedup,
            dedup_threshold=self.dedup_threshold,
            progress=lambda files: ctx.progress(files, total=len(files), desc="files"),
        )
        if report.failed:
            ctx.fail("unreadable_file", len(report.failed))
        if report.skipped:
            ctx.fail("skipped_binary_file", len(report.skipped))
            ctx.log.warning("ingest: skipped %d file(s) that are not text: %s", len(report.skipped),
                            "; ".join(f"{k} ({v})" for k, v in list(report.skipped.items())[:5]))
        ctx.summary.update({
            "db": str(self.db),
            "inputs": [str(p) for p in roots],
            "files": report.files,
            "files_unchanged": report.unchanged,
            "files_changed": report.changed,
            "files_unsupported": report.unsupported,
            "files_failed": report.failed,
            "files_skipped": report.skipped,
            "bytes_repaired": report.repaired,
            "encodings": report.encodings,
            "duplicates": {**report.duplicates, "files": report.duplicate_files},
            "migrated_files": report.migrated,
            "new_chunks": len(report.new_chunks),
            "deleted_chunks": report.deleted_chunks,
            "table_rows": report.table_rows,
        })
        if not report.files:
            ctx.log.warning("ingest: no supported documents under %s", ", ".join(map(str, roots)))
        return report.new_chunks
