"""Check and replay the calls of a recorded tool-use example (format/AST check, real execution).

Pure library: the ``tool_*`` stages call these on :class:`~synthrun.records.ToolExample` records.
"""

from __future__ import annotations

import json

from synthrun.records import ToolExample, ToolStep
from synthrun.tools.checker import check_path
from synthrun.tools.executors.base import ExecutionEngine
from synthrun.tools.generation import call_line
from synthrun.tools.loading import tools_from_dicts
from synthrun.tools.spec import ToolSpec


def example_tools(example: ToolExample) -> list[ToolSpec]:
    return tools_from_dicts(example.tools)


def history_text(example: ToolExample, limit: int = 300) -> str:
    """The calls of an example with their results, one per line, for judge prompts."""
    lines = [call_line(s.step, s, s.result, s.ok, s.error) for s in example.reasoning_path]
    return "\n".join(lines) or "(no calls)"


def format_issues(example: ToolExample, strict_handles: bool = True) -> list[str]:
    """Format/AST problems of an example's reasoning path, as one-line strings."""
    return [str(i) for i in check_path(example.reasoning_path, example_tools(example), strict_handles)]


def execute_example(example: ToolExample, engine: ExecutionEngine, *, strict_handles: bool = True,
                    max_result_chars: int = 20000) -> ToolExample:
    """Check and really run every call of ``example`` in a fresh session; store results in its steps.

    A call with a format problem is not run; nor is anything after a failed call.
    """
    tools = example_tools(example)
    issues = check_path(example.reasoning_path, tools, strict_handles)
    first_bad: dict[int, str] = {}
    for issue in issues:
        first_bad.setdefault(issue.step or 0, f"format: {issue.code}: {issue.message}")
    trace = engine.trace(example.metadata.get("environment") or {}, tools)
    steps: list[ToolStep] = []
    stopped: str | None = None
    counts = {"real": 0, "simulated": 0}
    try:
        for step in example.reasoning_path:
            step = step.model_copy(update={"result": None, "ok": None, "error": None, "executor": None,
                                           "resolved_args": None, "simulated": False})
            if stopped:
                step.ok, step.error = False, f"not run: {stopped}"
            elif step.step in first_bad:
                step.ok, step.error = False, first_bad[step.step]
                stopped = f"step {step.step} is malformed"
            else:
                outcome = trace.run(step.tool, step.args)
                result = outcome.result
                text = json.dumps(result, ensure_ascii=False, default=str)
                if len(text) > max_result_chars:
                    result = {"truncated": True, "preview": text[:max_result_chars]}
                ex = engine.executor_for(next(t for t in tools if t.name == step.tool)) if outcome.executor else None
                step.ok, step.error, step.result = outcome.ok, outcome.error, result
                step.executor, step.resolved_args = outcome.executor, outcome.resolved_args or None
                step.simulated = bool(ex is not None and not ex.real)
                if outcome.executor:
                    counts["simulated" if step.simulated else "real"] += 1
                if not outcome.ok:
                    stopped = f"step {step.step} failed"
            steps.append(step)
    finally:
        trace.close()
    meta = dict(example.metadata)
    meta["format_ok"] = not issues
    meta["format_issues"] = [str(i) for i in issues]
    meta["execution_ok"] = bool(steps) and all(s.ok for s in steps)
    meta["executed_steps"] = counts
    meta["simulated"] = counts["simulated"] > 0
    return example.model_copy(update={"reasoning_path": steps, "metadata": meta})


def first_bad_step(example: ToolExample, strict_handles: bool = True) -> tuple[int, str] | None:
    """(1-based index, reason) of the first step that is malformed or failed, if any."""
    bad_format: dict[int, str] = {}
    for issue in check_path(example.reasoning_path, example_tools(example), strict_handles):
        bad_format.setdefault(issue.step or 0, f"format: {issue}")
    for i, step in enumerate(example.reasoning_path, 1):
        if i in bad_format:
            return i, bad_format[i]
        if step.ok is False:
            return i, f"execution_failed: step {i} {step.tool}: {step.error}"
    return None
