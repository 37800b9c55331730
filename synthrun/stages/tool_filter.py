"""Deterministic checks on tool-use examples, before any LLM judge (see :mod:`synthrun.scoring.tool_gates`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from synthrun.context import StageContext
from synthrun.records import Record, ToolExample
from synthrun.scoring.tool_gates import CHECKS, ToolGateConfig, check_all, checks_score
from synthrun.stage import Stage
from synthrun.stages.llm_stage import Drop, write_dropped


class FilterTools(Stage):
    """Drop tool-use examples that fail a deterministic check, each with a named reason.

    Checks (all on by default): ``schema`` (calls valid against the tool schemas, also after
    resolving ``$stepN`` references, and every step ran), ``grounded`` (argument values come from
    the request or an earlier result), ``answer_uses_results`` (the final answer states the
    results it relies on and no number they do not hold), ``specific_request`` (the request names
    an object, file, dataset or quantity). Dropped examples go to ``dropped.jsonl`` (the shape
    every filter uses: ``id, stage, reason, detail, record``; the reason is ``check_<name>`` of the
    first failed check, the detail says what and where); every example carries
    ``metadata["checks"]`` (check -> passed) and ``metadata["checks_score"]`` (0-10, share passed).
    With ``mode: mark`` nothing is dropped: failing examples are kept with ``gate_failed: REASON``
    (the judge then rates them 0 without a call; used by the tool judge evaluation recipe).
    Labelled rows (any tool format, see :mod:`synthrun.tools.labelled`) are read as examples.

    Attributes:
        checks: Names of the checks to run.
        gates: Thresholds (:class:`~synthrun.scoring.tool_gates.ToolGateConfig`).
        mode: ``drop`` failing examples, or ``mark`` them with ``gate_failed``.
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = ToolExample

    checks: list[str] = Field(default_factory=lambda: list(CHECKS))
    gates: ToolGateConfig = Field(default_factory=ToolGateConfig)
    mode: Literal["drop", "mark"] = "drop"

    @field_validator("checks")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check(s) {', '.join(unknown)} (checks: {', '.join(CHECKS)})")
        return value

    def run(self, records: list[Record], ctx: StageContext) -> list[ToolExample]:
        from synthrun.tools.labelled import as_tool_example
        from synthrun.tools.replay import example_tools

        kept: list[ToolExample] = []
        drops: list[Drop] = []
        counts = {name: 0 for name in self.checks}
        for record in ctx.progress(records, total=len(records), desc="check tool examples"):
            ex = as_tool_example(record)
            results = check_all(ex, example_tools(ex), self.gates, self.checks)
            failed = {k: v for k, v in results.items() if v}
            meta = {**ex.metadata, "checks": {k: v is None for k, v in results.items()},
                    "checks_score": checks_score(results)}
            ex = ex.model_copy(update={"metadata": meta})
            for name in failed:
                counts[name] += 1
            if not failed:
                kept.append(ex)
                continue
            first = next(iter(failed))
            if self.mode == "mark":
                ctx.fail(f"check_{first}")
                kept.append(ex.model_copy(update={"gate_failed": f"check_{first}: {failed[first]}"}))
            else:
                drops.append(Drop(ex, f"check_{first}", "; ".join(failed.values())))
        write_dropped(ctx, drops)
        ctx.summary.update({"in": len(records), "kept": len(kept), "dropped": len(drops), "failed": counts,
                            "mode": self.mode})
        return kept
