"""The reasoning-path JSON of a tool-use example: instruction, solution (steps + API documentation), metadata."""

from __future__ import annotations

from typing import Any

from synthrun.formats._common import ReadBack, WriteOptions, as_tool_example, tool_row_metadata
from synthrun.records import Record

NAME = "reasoning"
KINDS = frozenset({"tool"})
PARSE_ORDER = 5


def write(record: Record, opts: WriteOptions) -> dict[str, Any]:
    from synthrun.tools.loading import tools_from_dicts

    example = as_tool_example(record)
    path = []
    for s in example.reasoning_path:
        entry: dict[str, Any] = {"step": s.step, "thought": s.thought, "tool": s.tool, "args": s.args}
        if s.ok is not None:
            entry.update(result=s.result, ok=s.ok, executor=s.executor)
        path.append(entry)
    meta = {"difficulty": example.metadata.get("difficulty"), "mode": example.metadata.get("mode")}
    meta.update({k: example.metadata[k] for k in ("strategy", "target_tool", "distractors", "simulated")
                 if k in example.metadata})
    marks = tool_row_metadata(example)
    meta["simulated"] = bool(meta.get("simulated")) or marks["simulated"]
    meta["simulated_steps"] = marks["simulated_steps"]
    return {"id": example.id, "instruction": example.instruction,
            "solution": {"reasoning_path": path,
                         "api_documentation": [t.documentation() for t in tools_from_dicts(example.tools)],
                         "final_answer": example.final_answer},
            "metadata": meta}


def parse(row: dict[str, Any]) -> ReadBack | None:
    solution = row.get("solution")
    if not (isinstance(row.get("instruction"), str) and isinstance(solution, dict)):
        return None
    steps = solution["reasoning_path"] if isinstance(solution.get("reasoning_path"), list) else []
    reasoning = [str(s.get("thought") or s.get("tool") or "") for s in steps if isinstance(s, dict)]
    return ReadBack(row["instruction"], str(solution.get("final_answer") or ""), reasoning,
                    split=True)
