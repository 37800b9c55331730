"""Source stage: read an existing dataset file (JSONL, JSON array, Parquet, or a `datasets` folder)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError

from synthrun.context import StageContext
from synthrun.records import Record, stable_id
from synthrun.stage import Stage, StageError

Format = Literal["auto", "jsonl", "json", "parquet", "hf"]


def detect_format(path: Path) -> str:
    """Guess the format of ``path`` from its name, then from its first bytes."""
    if path.is_dir():
        return "hf"
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    return "json" if head.lstrip().startswith(b"[") else "jsonl"


def _open_text(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _iter_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{lineno}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise StageError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def _iter_json(path: Path) -> Iterator[tuple[str, Any]]:
    with _open_text(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise StageError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, list):
        raise StageError(f"{path}: expected a JSON array of objects (or JSONL), got a {type(data).__name__}")
    for i, row in enumerate(data):
        yield f"{path}: item {i}", row


def _iter_parquet(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise StageError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    i = 0
    for batch in reader.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            yield f"{path}: row {i}", row
            i += 1


def _iter_hf(path: Path, split: str | None) -> Iterator[tuple[str, Any]]:
    import os

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from datasets import DatasetDict, load_from_disk

    try:
        ds = load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - datasets raises FileNotFoundError or its own errors
        raise StageError(f"{path}: not a `datasets` save_to_disk folder ({str(exc).splitlines()[0]})") from None
    if isinstance(ds, DatasetDict):
        splits = list(ds)
        chosen = split or ("train" if "train" in ds else (splits[0] if len(splits) == 1 else None))
        if chosen not in ds:
            raise StageError(f"{path}: has splits {splits}; choose one with split=NAME")
        ds = ds[chosen]
    elif split:
        raise StageError(f"{path}: is a single dataset without splits (split={split!r} given)")
    for i, row in enumerate(ds):
        yield f"{path}: row {i}", row


class LoadRecords(Stage):
    """Read every row of an existing dataset as a :class:`Record` (all fields kept).

    The id is the row's ``id_field`` when present, else a stable hash of the row
    (identical rows get ``-2``, ``-3`` ... suffixes so ids stay unique). The file
    path is stored in each record's ``provenance.source``.

    Attributes:
        path: A JSONL (``.jsonl``, ``.jsonl.gz``), JSON array, Parquet file, or a folder
            written by ``datasets.Dataset.save_to_disk``.
        format: ``auto`` (from the name and first bytes), ``jsonl``, ``json``, ``parquet`` or ``hf``.
        limit: Read at most this many rows.
        split: Split of a saved ``DatasetDict`` (default ``train`` or the only split).
        id_field: Field holding the row id.
        required: Fields every row must have (e.g. ``[label]`` for a labelled evaluation set).
    """

    source: ClassVar[bool] = True
    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record

    path: str
    format: Format = "auto"
    limit: int | None = Field(default=None, ge=0)
    split: str | None = None
    id_field: str = "id"
    required: list[str] = Field(default_factory=list)

    def rows(self) -> Iterator[tuple[str, Any]]:
        """Yield ``(where, row)`` pairs, ``where`` being ``file:line`` or ``file: row N``."""
        path = Path(self.path).expanduser()
        if not path.exists():
            raise StageError(f"load_records: {path}: file not found")
        fmt = detect_format(path) if self.format == "auto" else self.format
        if fmt == "hf":
            return _iter_hf(path, self.split)
        if path.is_dir():
            raise StageError(f"load_records: {path}: is a folder, not a {fmt} file")
        return {"jsonl": _iter_jsonl, "json": _iter_json, "parquet": _iter_parquet}[fmt](path)

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        return list(self.iter_records(ctx))

    def iter_records(self, ctx: StageContext) -> Iterator[Record]:
        """The records one by one (the runner streams them to disk: a big file never sits in memory)."""
        loaded = 0
        seen: dict[str, int] = {}
        source = str(Path(self.path).expanduser())
        rows = self.rows()
        if self.limit is not None:
            rows = islice(rows, self.limit)
        for where, row in rows:
            if not isinstance(row, dict):
                raise StageError(f"{where}: expected a JSON object, got {type(row).__name__}")
            row = dict(row)
            for name in self.required:
                if row.get(name) is None:
                    rid = row.get(self.id_field)
                    raise StageError(f"{where}: row{f' {rid}' if rid else ''} has no '{name}' field "
                                     f"(required: {', '.join(self.required)})")
            given = row.get(self.id_field)
            if given is not None and str(given) != "":
                rid = str(given)
            else:
                rid = stable_id(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str), prefix="r")
                seen[rid] = seen.get(rid, 0) + 1
                if seen[rid] > 1:
                    rid = f"{rid}-{seen[rid]}"
            if self.id_field != "id" and row.get("id") not in (None, "", rid):
                row["original_id"] = row["id"]
            row["id"] = rid
            provenance = row.get("provenance")
            if provenance is not None and not isinstance(provenance, dict):
                row["provenance_original"] = row.pop("provenance")
                provenance = None
            row["provenance"] = {**(provenance or {}), "source": (provenance or {}).get("source") or source,
                                 "stage": ctx.name, "run_id": ctx.run_id}
            try:
                record = Record.model_validate(row)
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err.get("loc", ()))
                raise StageError(f"{where}: field {loc}: {err.get('msg')}") from None
            loaded += 1
            yield record
        ctx.summary.update({"path": source, "loaded": loaded, "limit": self.limit})
