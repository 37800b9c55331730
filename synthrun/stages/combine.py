"""Merge several training datasets (files, globs, run folders) into one chat dataset, de-duplicated."""

from __future__ import annotations

import glob
import re
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from synthrun.context import StageContext
from synthrun.finetune.data import RowError, group_of, text_key, to_messages
from synthrun.io import write_jsonl
from synthrun.records import Record, stable_id
from synthrun.stage import Stage, StageError
from synthrun.stages.dataset_files import declare
from synthrun.stages.load_records import LoadRecords

_STAGE_DIR = re.compile(r"^\d\d_")


def _run_folder_file(folder: Path) -> Path | None:
    """The dataset a run folder (or one stage folder of it) ended with: its last export, else its last data."""
    stages = sorted(p for p in folder.iterdir() if p.is_dir() and _STAGE_DIR.match(p.name))
    candidates = [*reversed(stages)] if stages else [folder]
    for stage in candidates:
        exported = sorted((stage / "dataset").glob("train*.jsonl")) if (stage / "dataset").is_dir() else []
        chat = [p for p in exported if ".chatml." in p.name or ".trl." in p.name]
        if chat or exported:
            return (chat or exported)[0]
        if (stage / "data.jsonl").is_file() and (stage / "_SUCCESS").is_file():
            return stage / "data.jsonl"
    return None


def expand_sources(paths: list[str]) -> list[Path]:
    """Files behind ``paths``: files, globs, run folders and `datasets` folders, in order, each once."""
    out: list[Path] = []
    for spec in paths:
        matches = sorted(glob.glob(str(Path(spec).expanduser()), recursive=True)) if glob.has_magic(spec) else [spec]
        if not matches:
            raise StageError(f"combine: {spec}: no file matches")
        for match in matches:
            path = Path(match).expanduser()
            if not path.exists():
                raise StageError(f"combine: {path}: file not found")
            if path.is_dir() and not (path / "dataset_info.json").is_file() and not (path / "dataset_dict.json").is_file():
                found = _run_folder_file(path)
                if found is None:
                    raise StageError(f"combine: {path}: a folder with no finished stage or dataset file in it")
                path = found
            if path not in out:
                out.append(path)
    return out


class Combine(Stage):
    """Read training examples from several sources and keep each example once.

    Every row becomes ``messages`` (see :func:`synthrun.finetune.data.to_messages`): ChatML/messages,
    Alpaca, ShareGPT and TRL tool rows, or synthrun records (QA, CoT, tool examples). Rows are dropped as
    duplicates when their id or their exact text was seen before. The merged set is also written as
    ``<stage_dir>/dataset/train.chatml.jsonl``.

    Attributes:
        path: One source or a list: files (JSONL, JSON, Parquet), globs, run folders (their last
            export, else their last stage's data) or `datasets` folders.
        cot_style: How chain-of-thought records become the assistant turn (steps | think_tags | none).
        skip_bad_rows: Drop rows without a training shape (counted) instead of failing on the first one.
    """

    source: ClassVar[bool] = True
    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    path: list[str] = Field(min_length=1)
    cot_style: str = "steps"
    skip_bad_rows: bool = False

    @field_validator("path", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        out: list[Record] = []
        ids: set[str] = set()
        texts: set[str] = set()
        counts: dict[str, Counter[str]] = {}
        for path in expand_sources(self.path):
            count = counts.setdefault(str(path), Counter())
            for where, row in LoadRecords(path=str(path)).rows():
                if not isinstance(row, dict):
                    raise StageError(f"{where}: expected a JSON object, got {type(row).__name__}")
                try:
                    messages = to_messages(row, self.cot_style)
                except RowError as exc:
                    if not self.skip_bad_rows:
                        raise StageError(f"{where}: {exc}") from None
                    count["bad_row"] += 1
                    ctx.fail("bad_row")
                    continue
                key = text_key(messages)
                meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
                rid = str(row.get("id") or meta.get("id") or stable_id(key, prefix="ex"))
                if rid in ids or key in texts:
                    count["duplicate"] += 1
                    ctx.fail("duplicate")
                    continue
                ids.add(rid)
                texts.add(key)
                count["kept"] += 1
                prov = row.get("provenance") if isinstance(row.get("provenance"), dict) else meta.get("provenance")
                data: dict[str, Any] = {"id": rid, "messages": messages, "group": group_of(row, messages),
                                        "provenance": {**(prov or {}), "source": str(path), "stage": ctx.name,
                                                       "run_id": ctx.run_id}}
                if isinstance(row.get("tools"), list):
                    data["tools"] = row["tools"]
                out.append(Record.model_validate(data))
        if not out:
            raise StageError(f"combine: no training examples in {', '.join(self.path)}")
        dataset = ctx.stage_dir / "dataset" / "train.chatml.jsonl"
        write_jsonl(dataset, [{"messages": r.messages, **({"tools": r.tools} if getattr(r, "tools", None) else {})}
                              for r in out])
        ctx.summary.update({"sources": {k: dict(v) for k, v in counts.items()}, "kept": len(out),
                            "duplicates": sum(c["duplicate"] for c in counts.values()), "dataset_file": str(dataset)})
        declare(ctx.summary, {dataset.name: dataset})
        ctx.log.info("combined %d examples from %d sources into %s", len(out), len(counts), dataset)
        return out
