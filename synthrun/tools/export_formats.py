"""Tool-use training formats: TRL/Transformers, OpenAI fine-tuning, ShareGPT, reasoning-path JSON.

Executed examples export the arguments really sent (``resolved_args``: handles instead of
``$stepN`` references) and the real results as tool turns. Every row carries a ``metadata``
object with ``simulated`` (true when any tool result came from the simulated executor, not a
real backend) and ``simulated_steps``, so simulated results can be filtered before training.
"""

from __future__ import annotations

import json
from typing import Any

from synthrun.records import ToolExample, ToolStep
from synthrun.tools.loading import tools_from_dicts

FORMATS = ("trl", "openai", "sharegpt", "reasoning")


def _args(step: ToolStep) -> dict[str, Any]:
    return dict(step.resolved_args if step.resolved_args is not None else step.args)


def _content(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)


def function_defs(example: ToolExample) -> list[dict[str, Any]]:
    """The offered tools as ``{"type": "function", "function": {...}}`` entries."""
    return [t.to_openai() for t in tools_from_dicts(example.tools)]


def row_metadata(example: ToolExample) -> dict[str, Any]:
    """``{"id", "simulated", "simulated_steps"}``: which tool results are simulated."""
    steps = [s.step for s in example.reasoning_path if s.simulated]
    return {"id": example.id, "simulated": bool(steps), "simulated_steps": steps}


def _head(example: ToolExample, system_prompt: str | None) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if system_prompt:
        msgs.append({"role": "system", "content": system_prompt})
    msgs.append({"role": "user", "content": example.instruction})
    return msgs


def to_trl(example: ToolExample, system_prompt: str | None = None, thoughts: bool = True,
           metadata: bool = True) -> dict[str, Any]:
    """TRL / ``apply_chat_template`` conversational format: ``arguments`` are objects."""
    msgs = _head(example, system_prompt)
    for step in example.reasoning_path:
        msgs.append({"role": "assistant", "content": step.thought if thoughts else "",
                     "tool_calls": [{"type": "function", "function": {"name": step.tool, "arguments": _args(step)}}]})
        msgs.append({"role": "tool", "name": step.tool, "content": _content(step.result)})
    msgs.append({"role": "assistant", "content": example.final_answer})
    row = {"messages": msgs, "tools": function_defs(example)}
    if metadata:
        row["metadata"] = row_metadata(example)
    return row


def to_openai(example: ToolExample, system_prompt: str | None = None, thoughts: bool = True,
              metadata: bool = True) -> dict[str, Any]:
    """OpenAI fine-tuning JSONL: ``arguments`` are JSON strings, tool turns carry ``tool_call_id``."""
    msgs = _head(example, system_prompt)
    for step in example.reasoning_path:
        call_id = f"call_{step.step}"
        msgs.append({"role": "assistant", "content": (step.thought or None) if thoughts else None,
                     "tool_calls": [{"id": call_id, "type": "function", "function": {
                         "name": step.tool, "arguments": json.dumps(_args(step), ensure_ascii=False)}}]})
        msgs.append({"role": "tool", "tool_call_id": call_id, "content": _content(step.result)})
    msgs.append({"role": "assistant", "content": example.final_answer})
    row = {"messages": msgs, "tools": function_defs(example)}
    if metadata:
        row["metadata"] = row_metadata(example)
    return row


def to_sharegpt(example: ToolExample, system_prompt: str | None = None, thoughts: bool = True,
                metadata: bool = True) -> dict[str, Any]:
    """ShareGPT with ``function_call`` / ``observation`` turns and a JSON ``tools`` string."""
    conv = [{"from": "human", "value": example.instruction}]
    for step in example.reasoning_path:
        conv.append({"from": "function_call", "value": json.dumps({"name": step.tool, "arguments": _args(step)},
                                                                  ensure_ascii=False)})
        conv.append({"from": "observation", "value": _content(step.result)})
    conv.append({"from": "gpt", "value": example.final_answer})
    row: dict[str, Any] = {"conversations": conv,
                           "tools": json.dumps([d["function"] for d in function_defs(example)], ensure_ascii=False)}
    if system_prompt:
        row["system"] = system_prompt
    if metadata:
        row["metadata"] = row_metadata(example)
    return row


def to_reasoning(example: ToolExample, system_prompt: str | None = None, thoughts: bool = True,
                 metadata: bool = True) -> dict[str, Any]:
    """The reasoning-path JSON: instruction, solution (steps + API documentation), metadata."""
    tools = tools_from_dicts(example.tools)
    path = []
    for s in example.reasoning_path:
        entry: dict[str, Any] = {"step": s.step, "thought": s.thought, "tool": s.tool, "args": s.args}
        if s.ok is not None:
            entry.update(result=s.result, ok=s.ok, executor=s.executor)
        path.append(entry)
    meta = {"difficulty": example.metadata.get("difficulty"), "mode": example.metadata.get("mode")}
    meta.update({k: example.metadata[k] for k in ("strategy", "target_tool", "distractors", "simulated")
                 if k in example.metadata})
    marks = row_metadata(example)
    meta["simulated"] = bool(meta.get("simulated")) or marks["simulated"]
    meta["simulated_steps"] = marks["simulated_steps"]
    return {"id": example.id, "instruction": example.instruction,
            "solution": {"reasoning_path": path, "api_documentation": [t.documentation() for t in tools],
                         "final_answer": example.final_answer},
            "metadata": meta}


CONVERTERS = {"trl": to_trl, "openai": to_openai, "sharegpt": to_sharegpt, "reasoning": to_reasoning}
