"""Record -> training-format converters (ChatML, Alpaca, ShareGPT, plain JSONL, Alpaca text).

Each converter turns one record into one JSON-able row of a fine-tuning file:

* ``chatml``: ``{"messages": [{"role": "system"|"user"|"assistant", "content": ...}]}``
  (the OpenAI fine-tuning / Hugging Face chat-template format).
* ``alpaca``: ``{"instruction", "input", "output"}`` (plus ``"system"`` when a system prompt is set).
* ``sharegpt``: ``{"conversations": [{"from": "system"|"human"|"gpt", "value": ...}]}``.
* ``jsonl``: the record itself, as a plain JSON object.
* ``alpaca_text``: ``{"text": ...}``, the whole example in the Alpaca prompt layout.

Chain-of-thought examples put their reasoning into the assistant turn as chosen by
``cot_style``: ``steps`` ("Step 1: ..." lines, then "Answer: ..."), ``think_tags``
(``<think>...</think>`` then the answer) or ``none`` (answer only).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from synthrun.records import CoTExample, QAPair, Record, ToolExample

Format = Literal["chatml", "alpaca", "sharegpt", "jsonl", "alpaca_text"]
CotStyle = Literal["steps", "think_tags", "none"]
FORMATS: tuple[str, ...] = ("chatml", "alpaca", "sharegpt", "jsonl", "alpaca_text")

# The Alpaca training layout (a fixed data format from the Stanford Alpaca release, not an LLM prompt).
ALPACA_HEADER = ("Below is an instruction that describes a task. "
                 "Write a response that appropriately completes the request.")


class FormatError(ValueError):
    """A record that cannot be written in the requested format."""


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


def _tool_step_text(step) -> str:
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


def _metadata(record: Record) -> dict[str, Any]:
    meta: dict[str, Any] = {"id": record.id,
                            "provenance": record.provenance.model_dump(mode="json", exclude_none=True)}
    rating = getattr(record, "rating", None)
    if rating is not None:
        meta["rating"] = rating.model_dump(mode="json", exclude_none=True)
    return meta


def convert(record: Record, fmt: Format, *, system_prompt: str | None = None,
            cot_style: CotStyle = "steps", include_provenance: bool = False) -> dict[str, Any]:
    """Convert one record to one row of the training format ``fmt``.

    Args:
        record: A QAPair, CoTExample, ToolExample or (for ``jsonl``) any record.
        fmt: One of :data:`FORMATS`.
        system_prompt: Optional system message (ignored by ``jsonl``).
        cot_style: How reasoning steps enter the assistant turn.
        include_provenance: Add ``metadata`` (id, provenance, rating) to the row.

    Returns:
        The row as a JSON-able dict.

    Raises:
        FormatError: Unknown format, or a record without a question/answer shape.
    """
    record = specialize(record)
    if fmt == "jsonl":
        row = record.model_dump(mode="json", exclude={"provenance"})
        if include_provenance:
            row["provenance"] = record.provenance.model_dump(mode="json", exclude_none=True)
        return row
    if fmt not in FORMATS:
        raise FormatError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    prompt, response = prompt_and_response(record, cot_style)
    system = (system_prompt or "").strip()
    row: dict[str, Any]
    if fmt == "chatml":
        messages = [{"role": "system", "content": system}] if system else []
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        row = {"messages": messages}
    elif fmt == "sharegpt":
        turns = [{"from": "system", "value": system}] if system else []
        turns += [{"from": "human", "value": prompt}, {"from": "gpt", "value": response}]
        row = {"conversations": turns}
    elif fmt == "alpaca":
        row = {"instruction": prompt, "input": "", "output": response}
        if system:
            row["system"] = system
    else:  # alpaca_text
        head = f"{system}\n\n" if system else ""
        row = {"text": f"{head}{ALPACA_HEADER}\n\n### Instruction:\n{prompt}\n\n### Response:\n{response}"}
    if include_provenance:
        row["metadata"] = _metadata(record)
    return row
