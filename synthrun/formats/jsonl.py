"""Plain JSONL: the record itself as a JSON object (QA, CoT or tool-use); read back from its own fields."""

from __future__ import annotations

from typing import Any

from synthrun.formats._common import ReadBack, WriteOptions
from synthrun.records import Record

NAME = "jsonl"
KINDS = frozenset({"qa"})
PARSE_ORDER = 0


def write(record: Record, opts: WriteOptions) -> dict[str, Any]:
    row = record.model_dump(mode="json", exclude={"provenance"})
    if opts.include_provenance:
        row["provenance"] = record.provenance.model_dump(mode="json", exclude_none=True)
    return row


def parse(row: dict[str, Any]) -> ReadBack | None:
    if isinstance(row.get("question"), str) and isinstance(row.get("answer"), str):
        steps = row.get("reasoning")
        reasoning = [str(s) for s in steps] if isinstance(steps, list) else []
        return ReadBack(row["question"], row["answer"], reasoning, split=True)
    if isinstance(row.get("instruction"), str) and "reasoning_path" in row:
        reasoning = [str(s.get("thought") or s.get("tool") or "") for s in row.get("reasoning_path") or []
                     if isinstance(s, dict)]
        return ReadBack(row["instruction"], str(row.get("final_answer") or ""), reasoning, split=True)
    return None
