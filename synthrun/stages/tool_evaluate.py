"""Evaluate tool-use examples MCP-AgentBench style: requirements of the request vs. execution results."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from synthrun.context import StageContext
from synthrun.io import write_json
from synthrun.records import Record, ToolExample
from synthrun.stages.llm_stage import Drop, LLMStage
from synthrun.tools.replay import history_text

STATUS_SCORE = {"satisfied": 1.0, "partially_satisfied": 0.5, "not_satisfied": 0.0}
LABELS = ("fully_satisfied", "partially_satisfied", "not_satisfied", "execution_failed")


REQUIREMENT_PATTERN = r"[A-Z][A-Za-z0-9 _./,()'%:-]+"


def requirements_model(max_items: int) -> type[BaseModel]:
    """``{"requirements": [...]}`` with 1..``max_items`` plain sentences."""
    from typing import Annotated

    from pydantic import StringConstraints, create_model

    item = Annotated[str, StringConstraints(pattern=REQUIREMENT_PATTERN)]
    return create_model("Requirements", requirements=(list[item], Field(min_length=1, max_length=max_items)))


class RequirementCheck(BaseModel):
    reason: str = Field(default="", max_length=300)
    status: Literal["satisfied", "partially_satisfied", "not_satisfied"]


def label_for(score: float, executed: bool) -> str:
    """The label of an example's score (``execution_failed`` when some call did not run ok)."""
    if not executed:
        return "execution_failed"
    if score >= 0.999:
        return "fully_satisfied"
    return "not_satisfied" if score <= 0.0 else "partially_satisfied"


class EvaluateTools(LLMStage):
    """Extract the requirements of each instruction, check each against the execution results,
    and score the example 0-1 (satisfied 1, partially 0.5, not 0; mean over requirements).

    Labels: ``fully_satisfied`` | ``partially_satisfied`` | ``not_satisfied`` |
    ``execution_failed`` (some call failed or never ran; score 0). The stage writes
    ``evaluation_report.json`` (counts, mean score) and stores ``metadata["evaluation"]``.
    Two phases, each one batched ``ask``: requirements of every executed example, then one
    check per requirement. Dropped examples go to ``dropped.jsonl`` under their label.

    Attributes:
        min_score: Keep examples scoring at least this.
        strict: Keep only ``fully_satisfied`` examples.
        report_only: Annotate and report, drop nothing.
        max_requirements: Most requirements extracted per instruction.
        requirements_prompt: Prompt that lists requirements; ``check_prompt`` judges one.
        max_tokens: Token budget of one LLM call.
        temperature: Sampling temperature of both phases.
    """

    input_type: ClassVar[type[Record]] = ToolExample
    output_type: ClassVar[type[Record]] = ToolExample
    needs_all_records: ClassVar[bool] = True

    min_score: float = Field(default=0.5, ge=0, le=1)
    strict: bool = False
    report_only: bool = False
    max_requirements: int = Field(default=3, ge=1, le=10)
    requirements_prompt: str = "tool_requirements"
    check_prompt: str = "tool_requirement_check"
    max_tokens: int = Field(default=128, ge=32)
    temperature: float = Field(default=0.0, ge=0, le=2)

    def run(self, records: list[ToolExample], ctx: StageContext) -> list[Record]:
        keys = [ex.id or str(i) for i, ex in enumerate(records)]
        executed = {k: bool(ex.reasoning_path) and all(s.ok for s in ex.reasoning_path)
                    for k, ex in zip(keys, records, strict=True)}
        requirements = self._requirements([(k, ex) for k, ex in zip(keys, records, strict=True) if executed[k]], ctx)
        verdicts = self._verdicts(requirements, dict(zip(keys, records, strict=True)), ctx)
        out: list[Record] = []
        drops: list[Drop] = []
        counts = {label: 0 for label in LABELS}
        scores = []
        for k, ex in zip(keys, records, strict=True):
            items = verdicts.get(k, [])
            score = sum(STATUS_SCORE[v["status"]] for v in items) / len(items) if executed[k] and items else 0.0
            label = label_for(score, executed[k]) if (items or not executed[k]) else "not_satisfied"
            counts[label] += 1
            scores.append(score)
            ev = {"score": round(score, 3), "label": label, "requirements": items}
            ex = ex.model_copy(update={"metadata": {**ex.metadata, "evaluation": ev}})
            passed = label == "fully_satisfied" if self.strict else (label != "execution_failed" and score >= self.min_score)
            if passed or self.report_only:
                out.append(ex)
            else:
                drops.append(Drop(ex, label, f"{label} (score {score:.2f})"))
        report = {"examples": len(records), "labels": counts,
                  "mean_score": round(sum(scores) / len(scores), 3) if scores else None,
                  "min_score": self.min_score, "strict": self.strict, "report_only": self.report_only,
                  "kept": len(out)}
        write_json(ctx.stage_dir / "evaluation_report.json", report)
        ctx.summary.update(report)
        return self.finish(out, drops, ctx)

    def _requirements(self, todo: list[tuple[str, ToolExample]], ctx: StageContext) -> dict[str, list[str]]:
        """Phase 1: the requirements of each executed example's instruction."""
        items = [(k, {"instruction": ex.instruction, "max_requirements": self.max_requirements}) for k, ex in todo]
        requirements: dict[str, list[str]] = {}
        for res in self.ask(ctx, items, prompt=self.requirements_prompt, schema=requirements_model(self.max_requirements),
                            params=self.params(None), desc="requirements"):
            if res.ok:
                found = [" ".join(r.split())[:200] for r in res.parsed.requirements if r.strip()]
                requirements[res.request.tag] = found[: self.max_requirements]
            else:
                ctx.fail(f"requirements_{res.error}")
        return requirements

    def _verdicts(self, requirements: dict[str, list[str]], by_key: dict[str, ToolExample],
                  ctx: StageContext) -> dict[str, list[dict[str, Any]]]:
        """Phase 2: each requirement checked against the calls, results and answer (a failed check: not satisfied)."""
        items = []
        for k, reqs in requirements.items():
            ex = by_key[k]
            for j, item in enumerate(reqs):
                items.append(((k, j), {"instruction": ex.instruction, "requirement": item,
                                       "history": history_text(ex), "answer": ex.final_answer or "(none)"}))
        verdicts: dict[str, list[dict[str, Any]]] = {
            k: [{"requirement": r, "status": None} for r in v] for k, v in requirements.items()}
        for res in self.ask(ctx, items, prompt=self.check_prompt, schema=RequirementCheck, params=self.params(None),
                            desc="check requirements"):
            k, j = res.request.tag
            if res.ok:
                verdicts[k][j].update(status=res.parsed.status, reason=res.parsed.reason.strip())
            else:
                verdicts[k][j].update(status="not_satisfied", reason=f"check failed: {res.error}")
        return verdicts
