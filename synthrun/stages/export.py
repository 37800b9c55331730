"""Final stage: write the kept records as a fine-tuning file in one of the training formats."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import field_validator

from synthrun.context import StageContext
from synthrun.formats import CotStyle, FormatError, convert, names, specialize
from synthrun.io import dumps, write_jsonl
from synthrun.recordfile import streamed_lines
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

    #: With an absolute ``filename`` it gets all records at once: then as a stream, written as it is read.
    streams_input: ClassVar[bool] = True

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

    def _convert(self, records: Iterable[Record], dropped: Counter[str]) -> Iterator[tuple[Record, dict]]:
        """(record, training row) of every record kept; what is dropped is counted in ``dropped``."""
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
            yield record, row

    def _finish(self, ctx: StageContext, path: Path, count_in: int, count_out: int, dropped: Counter[str]) -> None:
        for reason, n in dropped.items():
            ctx.fail(reason, n)
        declare(ctx.summary, {path.name: path})
        ctx.summary.update({
            "dataset_file": str(path),
            "format": self.format,
            "input": count_in,
            "exported": count_out,
            "dropped": dict(dropped),
            "threshold": self.threshold,
        })
        ctx.log.info("exported %d of %d records to %s", count_out, count_in, path)

    def run(self, records: Iterable[Record], ctx: StageContext) -> list[Record] | Iterator[Record]:  # type: ignore[override]
        """Export a list (any sequence) and return the kept records; a stream (the runner's
        :class:`~synthrun.recordfile.RecordStream`, for a file outside the stage folder) is exported as
        it is read and the kept records are streamed on."""
        dropped: Counter[str] = Counter()
        path = dataset_path(ctx.stage_dir, self.format, self.filename)
        if not isinstance(records, Sequence):
            return self._stream(records, ctx, path, dropped)
        pairs = list(self._convert(records, dropped))
        write_jsonl(path, [row for _, row in pairs])
        self._finish(ctx, path, len(records), len(pairs), dropped)
        return [record for record, _ in pairs]

    def _stream(self, records: Iterable[Record], ctx: StageContext, path: Path,
                dropped: Counter[str]) -> Iterator[Record]:
        counted = [0, 0]

        def inputs() -> Iterator[Record]:
            for record in records:
                counted[0] += 1
                yield record

        with streamed_lines(path) as write:
            for record, row in self._convert(inputs(), dropped):
                counted[1] += 1
                write(dumps(row))
                yield record
        self._finish(ctx, path, counted[0], counted[1], dropped)
