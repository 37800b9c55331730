"""Alpaca: ``{"instruction", "input", "output"}`` (plus ``"system"`` when a system prompt is set)."""

from __future__ import annotations

from typing import Any

from synthrun.formats._common import ReadBack, WriteOptions, prompt_and_response, qa_metadata
from synthrun.records import Record

NAME = "alpaca"
KINDS = frozenset({"qa"})
PARSE_ORDER = 40


def write(record: Record, opts: WriteOptions) -> dict[str, Any]:
    prompt, response = prompt_and_response(record, opts.cot_style)
    system = (opts.system_prompt or "").strip()
    row: dict[str, Any] = {"instruction": prompt, "input": "", "output": response}
    if system:
        row["system"] = system
    if opts.include_provenance:
        row["metadata"] = qa_metadata(record)
    return row


def parse(row: dict[str, Any]) -> ReadBack | None:
    if not (isinstance(row.get("instruction"), str) and isinstance(row.get("output"), str)):
        return None
    extra = row["input"] if isinstance(row.get("input"), str) else ""
    return ReadBack(row["instruction"] + (f"\n\n{extra}" if extra.strip() else ""), row["output"])
