"""ShareGPT: ``{"conversations": [{"from": "system"|"human"|"gpt", "value": ...}]}``.

A tool-use example written with ``tool_turns`` (the tool export) gets ``function_call`` /
``observation`` turns and a JSON ``tools`` string instead of one narrated ``gpt`` turn.
"""

from __future__ import annotations

import json
from typing import Any

from synthrun.formats._common import (
    ReadBack,
    WriteOptions,
    as_tool_example,
    call_args,
    function_defs,
    last_turns,
    prompt_and_response,
    qa_metadata,
    result_text,
    tool_row_metadata,
)
from synthrun.records import Record

NAME = "sharegpt"
KINDS = frozenset({"qa", "tool"})
PARSE_ORDER = 30


def write(record: Record, opts: WriteOptions) -> dict[str, Any]:
    if opts.tool_turns:
        return _write_tool(record, opts)
    prompt, response = prompt_and_response(record, opts.cot_style)
    system = (opts.system_prompt or "").strip()
    turns = [{"from": "system", "value": system}] if system else []
    turns += [{"from": "human", "value": prompt}, {"from": "gpt", "value": response}]
    row: dict[str, Any] = {"conversations": turns}
    if opts.include_provenance:
        row["metadata"] = qa_metadata(record)
    return row


def _write_tool(record: Record, opts: WriteOptions) -> dict[str, Any]:
    example = as_tool_example(record)
    conv = [{"from": "human", "value": example.instruction}]
    for step in example.reasoning_path:
        conv.append({"from": "function_call", "value": json.dumps({"name": step.tool, "arguments": call_args(step)},
                                                                  ensure_ascii=False)})
        conv.append({"from": "observation", "value": result_text(step.result)})
    conv.append({"from": "gpt", "value": example.final_answer})
    row: dict[str, Any] = {"conversations": conv,
                           "tools": json.dumps([d["function"] for d in function_defs(example)], ensure_ascii=False)}
    if opts.system_prompt:
        row["system"] = opts.system_prompt
    if opts.metadata:
        row["metadata"] = tool_row_metadata(example)
    return row


def parse(row: dict[str, Any]) -> ReadBack | None:
    if not isinstance(row.get("conversations"), list):
        return None
    turns = row["conversations"]
    qa = last_turns(turns, "from", "value", {"human", "user"}, {"gpt", "assistant"})
    if qa is None:
        return None
    calls = [t.get("value") for t in turns if isinstance(t, dict) and t.get("from") == "function_call"]
    if not calls:
        return ReadBack(qa[0], qa[1])
    return ReadBack(qa[0], qa[1], [_called(c) for c in calls], split=True)


def _called(value: Any) -> str:
    """The function name of a ``function_call`` turn (its JSON ``{"name", "arguments"}``)."""
    try:
        return str(json.loads(value).get("name") or "")
    except (TypeError, ValueError, AttributeError):
        return str(value)
