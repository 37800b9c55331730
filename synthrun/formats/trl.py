"""TRL / ``apply_chat_template`` conversational tool-use rows: ``{"messages", "tools"}``.

Each call is an assistant turn with ``tool_calls`` whose ``arguments`` are objects, followed by a
``tool`` turn with the real result; executed examples send ``resolved_args``. ``metadata`` marks
simulated results.
"""

from __future__ import annotations

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

NAME = "trl"
KINDS = frozenset({"tool"})
PARSE_ORDER = 10


def write(record: Record, opts: WriteOptions) -> dict[str, Any]:
    example = as_tool_example(record)
    msgs = chat_head(example, opts.system_prompt)
    for step in example.reasoning_path:
        msgs.append({"role": "assistant", "content": step.thought if opts.thoughts else "",
                     "tool_calls": [{"type": "function", "function": {"name": step.tool, "arguments": call_args(step)}}]})
        msgs.append({"role": "tool", "name": step.tool, "content": result_text(step.result)})
    return tool_messages_row(example, msgs, opts)


def parse(row: dict[str, Any]) -> ReadBack | None:
    """A ``messages`` row whose calls carry their arguments as objects."""
    return parse_tool_messages(row, dict)
