"""Deterministic checks on tool-use examples, before any LLM judge (see :mod:`synthrun.scoring.tool_gates`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from synthrun.context import StageContext
from synthrun.io import write_jsonl
from synthrun.records import Record, ToolExample
from synthrun.scoring.tool_gates import CHECKS, ToolGateConfig, check_all, checks_score
from synthrun.stage import Stage


class FilterTools(Stage):
    """Drop tool-use examples that fail a deterministic check, each with a named reason.

    Checks (all on by default): ``schema`` (calls valid against the tool schemas, also after
    resolving ``$stepN`` references, and every step ran), ``grounded`` (argument values come from
    the request or an earlier result), ``answer_uses_results`` (the final answer states the
    results it relies on and no number they do not hold), ``specific_request`` (the request names
    an object, file, dataset or quantity). Dropped examples go to ``dropped.jsonl`` with
    ``dropped_reason`` (the first failed check) and ``failed_checks``; kept ones carry
    ``metadata["checks"]``.

    Attributes:
        checks: Names of the checks to run.
        gates: Thresholds (:class:`~synthrun.scoring.tool_gates.ToolGateConfig`).
        drop: False only annotates (``metadata["checks"]`` and ``checks_score``), dropping nothing.
    """

    input_type: ClassVar[type[Record]] = ToolExample
    output_type: ClassVar[type[Record]] = ToolExample

    checks: list[str] = Field(default_factory=lambda: list(CHECKS))
    gates: ToolGateConfig = Field(default_factory=ToolGateConfig)
    drop: bool = True

    @field_validator("checks")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check(s) {', '.join(unknown)} (checks: {', '.join(CHECKS)})")
        return value

    def run(self, records: list[ToolExample], ctx: StageContext) -> list[ToolExample]:
        from synthrun.tools.stagekit import example_tools

        kept: list[ToolExample] = []
        dropped: list[dict] = []
        counts = {name: 0 for name in self.checks}
        for ex in ctx.progress(records, total=len(records), desc="check tool examples"):
            results = check_all(ex, example_tools(ex), self.gates, self.checks)
            failed = {k: v for k, v in results.items() if v}
            meta = {**ex.metadata, "checks": {k: v is None for k, v in results.items()},
                    "checks_score": checks_score(results)}
            ex = ex.model_copy(update={"metadata": meta})
            for name in failed:
                counts[name] += 1
            if failed and self.drop:
                first = next(iter(failed))
                ctx.fail(f"check_{first}")
                dropped.append({**ex.model_dump(mode="json"), "dropped_reason": failed[first],
                                "failed_checks": failed})
                continue
            kept.append(ex)
        ctx.summary.update({"in": len(records), "kept": len(kept), "dropped": len(dropped), "failed": counts})
        write_jsonl(ctx.stage_dir / "dropped.jsonl", dropped)
        return kept
