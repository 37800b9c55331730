"""Labelled tool-use rows (for judge evaluation) read into :class:`~synthrun.records.ToolExample`.

A row: ``id, instruction, tools, reasoning_path, final_answer, label (1 good / 0 bad), kind``.
``tools`` is in any format the spec readers accept: the project's tool records (what
``ToolExample.tools`` holds), an OpenAI tools list, an MCP tool list, or a synthrun spec object
(with ``types``); call names are matched to the normalised (safe) tool names. A step has ``tool``,
``args`` and optionally ``result`` (it ran) or ``error`` (it failed).
"""

from __future__ import annotations

from typing import Any

from synthrun.errors import StageError
from synthrun.records import Provenance, ToolExample, ToolStep, stable_id
from synthrun.tools.loading import parse_spec
from synthrun.tools.spec import SpecError, ToolSpec


def is_tool_row(row: Any) -> bool:
    return isinstance(row, dict) and "reasoning_path" in row and "instruction" in row


def _is_record_dump(item: Any) -> bool:
    return (isinstance(item, dict) and isinstance(item.get("name"), str) and "function" not in item
            and "inputSchema" not in item and "input_schema" not in item
            and isinstance(item.get("parameters", []), list) and "source_format" in item)


def normalise_tools(tools: Any, where: str) -> tuple[list[ToolSpec], dict[str, str]]:
    """``(tools, original name -> safe name)`` from any supported tool list or spec object."""
    if isinstance(tools, list) and tools and all(_is_record_dump(t) for t in tools):
        specs = [ToolSpec.model_validate(t) for t in tools]
        return specs, {t.original_name or t.name: t.name for t in specs}
    if not tools:
        return [], {}
    try:
        toolset = parse_spec(tools, "auto", f"{where}: tools")
    except SpecError as exc:
        raise StageError(str(exc)) from None
    return toolset.tools, {orig: safe for safe, orig in toolset.name_map.items()}


def row_to_example(row: dict[str, Any], where: str, require_label: bool = True) -> ToolExample:
    """One labelled row as a :class:`ToolExample` (``label`` and ``kind`` in ``metadata``)."""
    if not isinstance(row, dict):
        raise StageError(f"{where}: a tool row must be an object")
    if require_label and row.get("label") not in (0, 1, True, False, "0", "1"):
        raise StageError(f"{where}: row {row.get('id') or '?'} has no label (0 or 1)")
    tools, names = normalise_tools(row.get("tools") or [], where)
    steps = []
    path = row.get("reasoning_path") or []
    if not isinstance(path, list):
        raise StageError(f"{where}: reasoning_path must be a list of steps")
    for i, s in enumerate(path, 1):
        if not isinstance(s, dict) or not isinstance(s.get("tool"), str):
            raise StageError(f"{where}: reasoning_path[{i - 1}] needs a 'tool' name")
        args = s.get("args") if s.get("args") is not None else s.get("arguments", {})
        ok = True if "result" in s and "error" not in s else (False if s.get("error") else s.get("ok"))
        steps.append(ToolStep(step=i, thought=str(s.get("thought") or ""), tool=names.get(s["tool"], s["tool"]),
                              args=args if isinstance(args, dict) else {"_": args}, result=s.get("result"),
                              ok=ok, error=s.get("error"), simulated=bool(s.get("simulated", False))))
    known = {"id", "instruction", "tools", "reasoning_path", "final_answer", "metadata", "provenance", "rating"}
    extras = {k: v for k, v in row.items() if k not in known}
    if "label" in row:
        extras["label"] = int(row["label"])
    if "kind" in row:
        extras["kind"] = str(row.get("kind") or "")
    rid = str(row.get("id") or stable_id(row.get("instruction"), where, prefix="row-"))
    prov = row.get("provenance") if isinstance(row.get("provenance"), dict) else {"source": where.split(":")[0]}
    return ToolExample(id=rid, instruction=str(row.get("instruction") or ""),
                       tools=[t.model_dump(mode="json") for t in tools], reasoning_path=steps,
                       final_answer=str(row.get("final_answer") or ""), metadata=dict(row.get("metadata") or {}),
                       provenance=Provenance.model_validate(prov), **extras)


def as_tool_example(record: Any) -> ToolExample:
    """A record as a :class:`ToolExample`: as is when it is one, else read like a labelled row."""
    if isinstance(record, ToolExample):
        return record
    data = record.model_dump(mode="json") if hasattr(record, "model_dump") else dict(record)
    steps = data.get("reasoning_path") or []
    tools = data.get("tools") or []
    if (isinstance(steps, list) and all(isinstance(s, dict) and isinstance(s.get("step"), int) for s in steps)
            and isinstance(tools, list) and all(_is_record_dump(t) for t in tools)):
        return ToolExample.model_validate(data)
    if not is_tool_row(data):
        raise StageError(f"record {data.get('id') or '?'} is not a tool-use example "
                         f"(needs instruction and reasoning_path; has {sorted(data)[:8]})")
    return row_to_example(data, f"record {data.get('id') or '?'}", require_label=False)
