"""OpenAI fine-tuning tool-use rows: ``arguments`` are JSON strings, tool turns carry ``tool_call_id``."""

from __future__ import annotations

import json
from typing import Any

from synthrun.formats._common import (
    ReadBack,
    WriteOptions,
    as_tool_example,
    call_args,
    chat_head,
    function_defs,
    last_turns,
    result_text,
    tool_row_metadata,
)
from synthrun.records import Record

NAME = "openai"
KINDS = frozenset({"tool"})
PARSE_ORDER = 10


def write(record: Record, opts: WriteOptions) -> dict[str, Any]:
    example = as_tool_example(record)
    msgs = chat_head(example, opts.system_prompt)
    for step in example.reasoning_path:
        call_id = f"call_{step.step}"
        msgs.append({"role": "assistant", "content": (step.thought or None) if opts.thoughts else None,
                     "tool_calls": [{"id": call_id, "type": "function", "function": {
                         "name": step.tool, "arguments": json.dumps(call_args(step), ensure_ascii=False)}}]})
        msgs.append({"role": "tool", "tool_call_id": call_id, "content": result_text(step.result)})
    msgs.append({"role": "assistant", "content": example.final_answer})
    row: dict[str, Any] = {"messages": msgs, "tools": function_defs(example)}
    if opts.metadata:
        row["metadata"] = tool_row_metadata(example)
    return row


def parse(row: dict[str, Any]) -> ReadBack | None:
    """A ``messages`` row whose calls carry their arguments as JSON strings."""
    msgs = row.get("messages")
    calls = [m for m in msgs if isinstance(m, dict) and m.get("tool_calls")] if isinstance(msgs, list) else []
    if not calls or not all(isinstance(c["tool_calls"][0].get("function", {}).get("arguments"), str) for c in calls):
        return None
    qa = last_turns(msgs, "role", "content", {"user"}, {"assistant"})  # type: ignore[arg-type]
    reasoning = [str(c.get("content") or c["tool_calls"][0]["function"].get("name") or "") for c in calls]
    return ReadBack(qa[0], qa[1], reasoning, split=True) if qa else None
