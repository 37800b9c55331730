"""Alpaca text: ``{"text": ...}``, the whole example in the Alpaca prompt layout."""

from __future__ import annotations

import re
from typing import Any

from synthrun.formats._common import ReadBack, WriteOptions, prompt_and_response, qa_metadata
from synthrun.records import Record

NAME = "alpaca_text"
KINDS = frozenset({"qa"})
PARSE_ORDER = 50

# The Alpaca training layout (a fixed data format from the Stanford Alpaca release, not an LLM prompt).
ALPACA_HEADER = ("Below is an instruction that describes a task. "
                 "Write a response that appropriately completes the request.")
_LAYOUT = re.compile(r"### Instruction:\n(.*?)\n\n### Response:\n(.*)$", re.S)


def write(record: Record, opts: WriteOptions) -> dict[str, Any]:
    prompt, response = prompt_and_response(record, opts.cot_style)
    system = (opts.system_prompt or "").strip()
    head = f"{system}\n\n" if system else ""
    row: dict[str, Any] = {"text": f"{head}{ALPACA_HEADER}\n\n### Instruction:\n{prompt}\n\n### Response:\n{response}"}
    if opts.include_provenance:
        row["metadata"] = qa_metadata(record)
    return row


def parse(row: dict[str, Any]) -> ReadBack | None:
    m = _LAYOUT.search(row["text"]) if isinstance(row.get("text"), str) else None
    return ReadBack(m.group(1), m.group(2)) if m else None
