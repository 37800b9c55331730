"""APIGen's three checks on tool-use examples: format (AST), execution, and an LLM semantic judge."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from synthrun.context import StageContext
from synthrun.records import Record, ToolExample
from synthrun.stages.llm_stage import Drop, LLMStage
from synthrun.tools.replay import execute_example, format_issues, history_text


class Verdict(BaseModel):
    reason: str = Field(default="", max_length=300)
    verdict: Literal["yes", "no"]


class VerifyTools(LLMStage):
    """Check each example three ways and record ``metadata["verification"]``.

    1. format: every call is well formed against its tool's schema;
    2. execution: every call ran without error (examples not executed yet are run here);
    3. semantic: an LLM judge says the calls and results answer the instruction.

    Attributes:
        semantic: Run the LLM judge (layer 3).
        drop_failed: Drop examples failing any layer (kept in ``dropped.jsonl`` with the reason).
        executors: Executors for examples that were not executed yet.
        prompt: Judge prompt.
        max_tokens: Token budget of one judgement.
        temperature: Sampling temperature of the judge.
    """

    input_type: ClassVar[type[Record]] = ToolExample
    output_type: ClassVar[type[Record]] = ToolExample
    answer_schema: ClassVar[type[BaseModel] | None] = Verdict
    desc: ClassVar[str] = "semantic check"

    semantic: bool = True
    drop_failed: bool = True
    executors: list[str] = Field(default_factory=lambda: ["hdf5", "simulated"])
    prompt: str = "tool_judge"
    max_tokens: int = Field(default=96, ge=16)
    temperature: float = Field(default=0.0, ge=0, le=2)

    def to_vars(self, record: ToolExample) -> dict[str, Any]:
        return {"instruction": record.instruction, "history": history_text(record),
                "answer": record.final_answer or "(none)"}

    def run(self, records: list[ToolExample], ctx: StageContext) -> list[Record]:
        checked = self._check(records, ctx)
        if self.semantic:
            todo = [ex for ex in checked
                    if ex.metadata["verification"]["format"] and ex.metadata["verification"]["execution"]]
            for res in self.ask(ctx, [(ex, self.to_vars(ex)) for ex in todo], prompt=self.prompt,
                                schema=Verdict, params=self.params(None)):
                ver = res.request.tag.metadata["verification"]
                if not res.ok:
                    ver["semantic"], ver["reason"] = False, f"judge failed: {res.error}"
                else:
                    ver["semantic"] = res.parsed.verdict == "yes"
                    ver["reason"] = res.parsed.reason.strip() or ver["reason"]
                    ver["judge_model"] = res.model
        kept: list[Record] = []
        drops: list[Drop] = []
        for ex in checked:
            ver = ex.metadata["verification"]
            ver["passed"] = bool(ver["format"] and ver["execution"] and (ver["semantic"] is not False))
            failed = next((f"{layer}_check_failed" for layer in ("format", "execution", "semantic")
                           if ver[layer] is False), None)
            if ver["passed"] or not self.drop_failed:
                kept.append(ex)
                if failed:
                    ctx.fail(failed)
            else:
                drops.append(Drop(ex, str(failed), ver["reason"]))
        ctx.summary.update({layer: sum(bool(e.metadata["verification"][layer]) for e in checked)
                            for layer in ("format", "execution", "semantic")})
        ctx.summary["passed"] = sum(e.metadata["verification"]["passed"] for e in checked)
        return self.finish(kept, drops, ctx)

    def _check(self, records: list[ToolExample], ctx: StageContext) -> list[ToolExample]:
        """Layers 1 and 2 (running examples that were not executed yet)."""
        checked = []
        engine = None
        try:
            for ex in records:
                if any(s.ok is None for s in ex.reasoning_path) or "execution_ok" not in ex.metadata:
                    if engine is None:
                        from synthrun.tools.executors import build_engine

                        engine = build_engine(self.executors, ctx.stage_dir / "work")
                    ex = execute_example(ex, engine)
                issues = format_issues(ex)
                executed = bool(ex.reasoning_path) and all(s.ok for s in ex.reasoning_path)
                failed = next((s for s in ex.reasoning_path if s.ok is False), None)
                ver = {"format": not issues, "execution": executed, "semantic": None,
                       "reason": issues[0] if issues else (f"step {failed.step}: {failed.error}" if failed else "")}
                checked.append(ex.model_copy(update={"metadata": {**ex.metadata, "verification": ver}}))
        finally:
            if engine is not None:
                engine.close()
        return checked
