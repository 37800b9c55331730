"""Parts the training-format modules share: record shapes, reasoning text, row metadata, read-back rows.

Not a format itself (the registry skips modules whose name starts with ``_``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from synthrun.records import CoTExample, QAPair, Record, ToolExample, ToolStep

CotStyle = Literal["steps", "think_tags", "none"]

_THINK = re.compile(r"^\s*<think>\s*(.*?)\s*</think>\s*(.*)$", re.S)
_STEP = re.compile(r"^Step \d+:\s*(.*)$")


class FormatError(ValueError):
    """A record that cannot be written in the requested format."""


class WriteOptions(BaseModel):
    """How a record becomes a row (each format reads the options it has a use for).

    Attributes:
        system_prompt: Optional system message.
        cot_style: How reasoning steps enter the assistant turn (steps | think_tags | none).
        include_provenance: Add ``metadata`` (id, provenance, rating) to a question/answer row.
        tool_turns: Write a tool-use example with real tool-call and tool-result turns (the tool
            export) instead of one assistant turn that narrates the calls.
        thoughts: With ``tool_turns``: each step's thought goes into the turn that makes the call.
        metadata: With ``tool_turns``: add ``metadata`` (id, ``simulated``, ``simulated_steps``).
    """

    system_prompt: str | None = None
    cot_style: CotStyle = "steps"
    include_provenance: bool = False
    tool_turns: bool = False
    thoughts: bool = True
    metadata: bool = True


@dataclass
class ReadBack:
    """One row of a training file read back: the question, the answer, reasoning steps, side data."""

    question: str
    answer: str
    reasoning: list[str] = field(default_factory=list)
    #: False when the answer may still hold rendered reasoning (``Step 1: ...``, ``<think>``).
    split: bool = False


def specialize(record: Record | dict[str, Any]) -> Record:
    """Return ``record`` as its most specific record type.

    The runner hands a stage whose ``input_type`` is :class:`Record` plain records
    carrying extra fields; this recovers a :class:`CoTExample`, :class:`ToolExample`
    or :class:`QAPair` from the fields present, and leaves anything else alone.
    """
    if isinstance(record, (QAPair, CoTExample, ToolExample)):
        return record
    data = record.model_dump() if isinstance(record, Record) else dict(record)
    for cls, needed in ((CoTExample, ("question", "reasoning", "answer")),
                        (ToolExample, ("instruction", "reasoning_path")),
                        (QAPair, ("question", "answer"))):
        if all(k in data for k in needed):
            try:
                return cls.model_validate(data)
            except ValidationError:
                continue
    return record if isinstance(record, Record) else Record.model_validate(data)


def render_reasoning(steps: list[str], answer: str, cot_style: CotStyle) -> str:
    """Render reasoning ``steps`` and the final ``answer`` as one assistant message."""
    steps = [s.strip() for s in steps if s and s.strip()]
    if cot_style == "none" or not steps:
        return answer.strip()
    if cot_style == "think_tags":
        return "<think>\n" + "\n".join(steps) + "\n</think>\n\n" + answer.strip()
    if cot_style == "steps":
        lines = [f"Step {i}: {s}" for i, s in enumerate(steps, 1)]
        return "\n".join(lines) + f"\n\nAnswer: {answer.strip()}"
    raise FormatError(f"unknown cot_style {cot_style!r}; use steps, think_tags or none")


def split_reasoning(response: str) -> tuple[list[str], str]:
    """Recover (reasoning steps, answer) from an assistant turn :func:`render_reasoning` wrote."""
    m = _THINK.match(response)
    if m:
        return [s.strip() for s in m.group(1).splitlines() if s.strip()], m.group(2).strip()
    head, sep, answer = response.rpartition("\n\nAnswer: ")
    if sep:
        lines = [ln.strip() for ln in head.splitlines() if ln.strip()]
        steps = [_STEP.match(ln) for ln in lines]
        if lines and all(steps):
            return [s.group(1) for s in steps if s], answer.strip()
    return [], response.strip()


def _tool_step_text(step: ToolStep) -> str:
    call = f"call {step.tool}({', '.join(f'{k}={v!r}' for k, v in step.args.items())})"
    parts = [p for p in (step.thought.strip(), call) if p]
    text = ": ".join(parts) if len(parts) == 2 else parts[0]
    if step.result is not None:
        text += f" -> {step.result}"
    return text


def prompt_and_response(record: Record, cot_style: CotStyle = "steps") -> tuple[str, str]:
    """Return the (user prompt, assistant response) pair a record teaches.

    Raises:
        FormatError: For a record with no question/answer shape.
    """
    record = specialize(record)
    if isinstance(record, CoTExample):
        return record.question.strip(), render_reasoning(record.reasoning, record.answer, cot_style)
    if isinstance(record, ToolExample):
        steps = [_tool_step_text(s) for s in record.reasoning_path]
        return record.instruction.strip(), render_reasoning(steps, record.final_answer, cot_style)
    if isinstance(record, QAPair):
        return record.question.strip(), record.answer.strip()
    extra = record.model_extra or {}
    for q, a in (("instruction", "output"), ("prompt", "response"), ("prompt", "completion")):
        if isinstance(extra.get(q), str) and isinstance(extra.get(a), str):
            return extra[q].strip(), extra[a].strip()
    raise FormatError(f"record {record.id or '?'} has no question/answer fields "
                      f"(fields: {sorted(record.model_dump())}); use format=jsonl")


def qa_metadata(record: Record) -> dict[str, Any]:
    """``{"id", "provenance", "rating"?}`` of a question/answer row."""
    meta: dict[str, Any] = {"id": record.id,
                            "provenance": record.provenance.model_dump(mode="json", exclude_none=True)}
    rating = getattr(record, "rating", None)
    if rating is not None:
        meta["rating"] = rating.model_dump(mode="json", exclude_none=True)
    return meta


# ---------------------------------------------------------------------------- tool-use rows


def as_tool_example(record: Record) -> ToolExample:
    """``record`` as a :class:`ToolExample` (the tool formats write nothing else)."""
    record = specialize(record)
    if not isinstance(record, ToolExample):
        raise FormatError(f"record {record.id or '?'} is not a tool-use example")
    return record


def call_args(step: ToolStep) -> dict[str, Any]:
    """The arguments really sent (``resolved_args``) when the step ran, else as written."""
    return dict(step.resolved_args if step.resolved_args is not None else step.args)


def result_text(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)


def function_defs(example: ToolExample) -> list[dict[str, Any]]:
    """The offered tools as ``{"type": "function", "function": {...}}`` entries."""
    from synthrun.tools.loading import tools_from_dicts

    return [t.to_openai() for t in tools_from_dicts(example.tools)]


def tool_row_metadata(example: ToolExample) -> dict[str, Any]:
    """``{"id", "simulated", "simulated_steps"}``: which tool results are simulated."""
    steps = [s.step for s in example.reasoning_path if s.simulated]
    return {"id": example.id, "simulated": bool(steps), "simulated_steps": steps}


def chat_head(example: ToolExample, system_prompt: str | None) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if system_prompt:
        msgs.append({"role": "system", "content": system_prompt})
    msgs.append({"role": "user", "content": example.instruction})
    return msgs


def last_turns(turns: list[Any], role_key: str, content_key: str, user: set[str],
               assistant: set[str]) -> tuple[str, str] | None:
    """(last user text, last assistant text) of a chat transcript, or None."""
    question = next((t.get(content_key) for t in reversed(turns) if isinstance(t, dict) and t.get(role_key) in user),
                    None)
    answer = next((t.get(content_key) for t in reversed(turns)
                   if isinstance(t, dict) and t.get(role_key) in assistant), None)
    if isinstance(question, str) and isinstance(answer, str):
        return question, answer
    return None


def tool_messages_row(example: ToolExample, msgs: list[dict[str, Any]], opts: WriteOptions) -> dict[str, Any]:
    """Close a ``messages`` tool row: the final answer turn, the tool definitions, optional metadata."""
    msgs.append({"role": "assistant", "content": example.final_answer})
    row: dict[str, Any] = {"messages": msgs, "tools": function_defs(example)}
    if opts.metadata:
        row["metadata"] = tool_row_metadata(example)
    return row


def parse_tool_messages(row: dict[str, Any], args_type: type) -> ReadBack | None:
    """A ``messages`` row whose every call carries its ``arguments`` as ``args_type`` (str or dict)."""
    msgs = row.get("messages")
    calls = [m for m in msgs if isinstance(m, dict) and m.get("tool_calls")] if isinstance(msgs, list) else []
    if not calls or not all(isinstance(c["tool_calls"][0].get("function", {}).get("arguments"), args_type)
                            for c in calls):
        return None
    qa = last_turns(msgs, "role", "content", {"user"}, {"assistant"})  # type: ignore[arg-type]
    reasoning = [str(c.get("content") or c["tool_calls"][0]["function"].get("name") or "") for c in calls]
    return ReadBack(qa[0], qa[1], reasoning, split=True) if qa else None
