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
    parse_tool_messages,
    result_text,
    tool_messages_row,
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
    return tool_messages_row(example, msgs, opts)


def parse(row: dict[str, Any]) -> ReadBack | None:
    """A ``messages`` row whose calls carry their arguments as JSON strings."""
    return parse_tool_messages(row, str)
