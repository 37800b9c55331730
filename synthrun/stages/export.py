"""Final stage: write the kept records as a fine-tuning file in one of the training formats."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import ClassVar

from pydantic import field_validator

from synthrun.context import StageContext
from synthrun.formats import CotStyle, FormatError, convert, names, specialize
from synthrun.io import write_jsonl
from synthrun.records import Record
from synthrun.stage import Stage, StageError
from synthrun.stages.dataset_files import declare


def dataset_path(stage_dir: Path, fmt: str, filename: str | None) -> Path:
    """Return where an export stage in ``stage_dir`` writes its file."""
    name = Path(filename) if filename else Path("train.jsonl" if fmt == "jsonl" else f"train.{fmt}.jsonl")
    return name if name.is_absolute() else stage_dir / "dataset" / name


class Export(Stage):
    """Write records as a training file (``<stage_dir>/dataset/train.<format>.jsonl``).

    Re-running only this stage with another ``threshold`` or ``format`` re-exports the
    already rated records without any new LLM call ("validate once, export many").

    Attributes:
        format: chatml | alpaca | sharegpt | jsonl | alpaca_text, or any other question/answer
            format module of :mod:`synthrun.formats`.
        system_prompt: Optional system message added to every example.
        cot_style: How chain-of-thought reasoning is rendered: steps | think_tags | none.
        threshold: Keep only records whose ``rating.total`` is at least this (unrated
            records are then dropped too); None keeps everything.
        include_provenance: Add a ``metadata`` object (id, provenance, rating) to each row.
        filename: File name inside ``<stage_dir>/dataset/`` (or an absolute path).
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record

    format: str = "chatml"
    system_prompt: str | None = None
    cot_style: CotStyle = "steps"
    threshold: float | None = None
    include_provenance: bool = False
    filename: str | None = None

    @property
    def needs_all_records(self) -> bool:  # type: ignore[override]
        """Per record (the shards' files are joined) unless the file is outside the stage folder."""
        return bool(self.filename) and Path(str(self.filename)).is_absolute()

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in names("qa"):
            raise ValueError(f"unknown export format {value!r}; use one of {', '.join(names('qa'))}")
        return value

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        kept: list[Record] = []
        rows: list[dict] = []
        dropped: Counter[str] = Counter()
        for record in records:
            record = specialize(record)
            if self.threshold is not None:
                rating = getattr(record, "rating", None)
                if rating is None:
                    dropped["unrated"] += 1
                    continue
                if rating.total < self.threshold:
                    dropped["below_threshold"] += 1
                    continue
            try:
                row = convert(record, self.format, system_prompt=self.system_prompt,
                              cot_style=self.cot_style, include_provenance=self.include_provenance)
            except FormatError as exc:
                raise StageError(f"export: {exc}") from None
            rows.append(row)
            kept.append(record)
        for reason, n in dropped.items():
            ctx.fail(reason, n)
        path = dataset_path(ctx.stage_dir, self.format, self.filename)
        write_jsonl(path, rows)
        declare(ctx.summary, {path.name: path})
        ctx.summary.update({
            "dataset_file": str(path),
            "format": self.format,
            "input": len(records),
            "exported": len(rows),
            "dropped": dict(dropped),
            "threshold": self.threshold,
        })
        ctx.log.info("exported %d of %d records to %s", len(rows), len(records), path)
        return kept
