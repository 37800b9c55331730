"""Record files for big runs: a stage's JSONL read lazily, records kept compact, files written streamed.

:class:`RecordFile` iterates a finished stage's ``data.jsonl`` without loading it; :class:`CompactRecords`
holds validated records as their JSON text (a read-only list decoded on access) for stages that need
all records at once; :class:`RecordStream` re-reads and validates them on each pass for a stage that
reads its input in passes (``streams_input``); writes go through a temp file, fsync and a rename, never all in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, overload

from pydantic import ValidationError

from synthrun.io import dumps, file_mode
from synthrun.records import Record
from synthrun.stage import Stage, StageError

DATA = "data.jsonl"
SHARDS = "shards"

try:  # orjson parses a million lines noticeably faster; json is the fallback
    import orjson

    loads: Any = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency
    loads = json.loads


def count_lines(path: Path) -> int:
    """Number of non-empty lines of a JSONL file (read in 1 MB blocks)."""
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                n += 1
    return n


class RecordFile:
    """A finished stage's records, read lazily from its JSONL file; iterating gives plain dicts."""

    def __init__(self, path: Path, count: int | None = None):
        self.path = Path(path)
        self._count = count

    def __len__(self) -> int:
        if self._count is None:
            self._count = count_lines(self.path)
        return self._count

    def lines(self) -> Iterator[str]:
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield line.rstrip("\n")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for line in self.lines():
            yield loads(line)


class CompactRecords(Sequence[Record]):
    """Validated records kept as their JSON text and decoded on access (a read-only list).

    A million short records take a few hundred MB this way instead of ~1.6 GB as pydantic objects.
    """

    def __init__(self, lines: list[bytes], cls: type[Record]):
        self._lines = lines
        self._cls = cls

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return [self._cls.model_validate_json(b) for b in self._lines[index]]
        return self._cls.model_validate_json(self._lines[index])

    def __iter__(self) -> Iterator[Record]:
        for b in self._lines:
            yield self._cls.model_validate_json(b)


class RecordStream:
    """A finished stage's records validated as a stage's input type one at a time, on every iteration.

    For a stage that declares ``streams_input`` (it reads its input in passes, e.g. dedup): nothing but
    the file path is held; a record that does not fit fails with the same one-line error as ``compact``.
    """

    def __init__(self, records: RecordFile, stage: Stage, name: str, prev: str):
        self._file, self._stage, self._name, self._prev = records, stage, name, prev

    def __len__(self) -> int:
        return len(self._file)

    def __iter__(self) -> Iterator[Record]:
        want = self._stage.input_type
        for i, line in enumerate(self._file.lines()):
            try:
                yield want.model_validate_json(line)
            except ValidationError as exc:
                raise misfit(self._stage, self._name, self._prev, line, i, exc) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))


def misfit(stage: Stage, name: str, prev: str, line: str | bytes, i: int, exc: ValidationError) -> StageError:
    try:
        rid = loads(line).get("id") or f"#{i}"
    except ValueError:
        rid = f"#{i}"
    return StageError(f"stage '{name}' expects {stage.input_type.__name__} records, but record {rid} from "
                      f"'{prev}' does not fit ({_first_error(exc)})")


def compact(records: RecordFile, stage: Stage, name: str, prev: str) -> CompactRecords:
    """Validate every record of ``records`` as the stage's input type and keep them compact."""
    want = stage.input_type
    kept: list[bytes] = []
    for i, line in enumerate(records.lines()):
        try:
            want.model_validate_json(line)
        except ValidationError as exc:
            raise misfit(stage, name, prev, line, i, exc) from None
        kept.append(line.encode("utf-8"))
    return CompactRecords(kept, want)


def to_line(row: Any) -> str:
    return dumps(row.model_dump(mode="json") if hasattr(row, "model_dump") else row)


def iter_shards(records: Iterable[Any], size: int) -> Iterator[list[str]]:
    """The records as JSON lines, ``size`` at a time (read lazily from a :class:`RecordFile`)."""
    source: Iterable[str] = records.lines() if isinstance(records, RecordFile) else map(to_line, records)
    batch: list[str] = []
    for line in source:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --------------------------------------------------------------------------- crash-safe files


def atomic_lines(path: Path, lines: Iterable[str]) -> int:
    """Write ``lines`` (no newlines) to ``path`` through a temp file, fsync and rename; return the count."""
    n = 0
    with streamed_lines(path) as write:
        for line in lines:
            write(line)
            n += 1
    return n


@contextmanager
def streamed_lines(path: Path) -> Iterator[Callable[[str], None]]:
    """Write lines (no newlines) to ``path`` one by one through a temp file; fsync and rename on success,
    remove the temp file on any error (what was at ``path`` stays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:

            def write(line: str) -> None:
                fh.write(line + "\n")

            yield write
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def concat(parts: Iterable[Path], dest: Path) -> None:
    """Concatenate files into ``dest`` atomically (streamed, never all in memory)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_digest(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def collect(result: Iterable[Any], stage_dir: Path) -> list[Any] | RecordFile:
    """A stage's return value: a list as it is; any other iterable streamed to a side file."""
    if isinstance(result, list):
        return result
    if isinstance(result, tuple):
        return list(result)
    path = stage_dir / f".{DATA}.stream"
    n = atomic_lines(path, map(to_line, result))
    return RecordFile(path, n)


def save(path: Path, outputs: list[Any] | RecordFile) -> list[Any] | RecordFile:
    """Write a stage's outputs as ``path`` (streamed); outputs already in a file are moved there."""
    if isinstance(outputs, RecordFile):
        if outputs.path != path:
            os.replace(outputs.path, path)
        return RecordFile(path, len(outputs))
    atomic_lines(path, map(to_line, outputs))
    return outputs


def keep(outputs: list[Any] | RecordFile, path: Path, size: int) -> list[Any] | RecordFile:
    """What the runner holds between stages: small outputs in memory, big ones as their file."""
    if isinstance(outputs, RecordFile) or len(outputs) <= size:
        return outputs
    return RecordFile(path, len(outputs))


def load(path: Path, stage: Stage, size: int) -> list[Any] | RecordFile:
    """A skipped (already done) stage's outputs: a list when they fit in a shard, else the file."""
    n = count_lines(path)
    if n > size:
        return RecordFile(path, n)
    return [stage.output_type.model_validate(loads(line)) for line in RecordFile(path).lines()]


def cleanup(stage_dir: Path) -> None:
    """Drop a finished stage's shard files (its data.jsonl holds them all)."""
    shutil.rmtree(stage_dir / SHARDS, ignore_errors=True)
    (stage_dir / f".{DATA}.stream").unlink(missing_ok=True)
