"""ChatML: ``{"messages": [{"role": "system"|"user"|"assistant", "content": ...}]}``.

The OpenAI fine-tuning / Hugging Face chat-template format of a question/answer example.
"""

from __future__ import annotations

from typing import Any

from synthrun.formats._common import (
    ReadBack,
    WriteOptions,
    last_turns,
    prompt_and_response,
    qa_metadata,
)
from synthrun.records import Record

NAME = "chatml"
KINDS = frozenset({"qa"})
PARSE_ORDER = 20


def write(record: Record, opts: WriteOptions) -> dict[str, Any]:
    prompt, response = prompt_and_response(record, opts.cot_style)
    system = (opts.system_prompt or "").strip()
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    row: dict[str, Any] = {"messages": messages}
    if opts.include_provenance:
        row["metadata"] = qa_metadata(record)
    return row


def parse(row: dict[str, Any]) -> ReadBack | None:
    if not isinstance(row.get("messages"), list):
        return None
    qa = last_turns(row["messages"], "role", "content", {"user"}, {"assistant"})
    return ReadBack(qa[0], qa[1]) if qa else None
