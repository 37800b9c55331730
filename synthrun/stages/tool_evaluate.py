"""Evaluate tool-use examples MCP-AgentBench style: requirements of the request vs. execution results."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from synthrun.context import StageContext
from synthrun.io import write_json, write_jsonl
from synthrun.llm.types import LLMRequest
from synthrun.records import Record, ToolExample
from synthrun.stage import Stage

STATUS_SCORE = {"satisfied": 1.0, "partially_satisfied": 0.5, "not_satisfied": 0.0}
LABELS = ("fully_satisfied", "partially_satisfied", "not_satisfied", "execution_failed")


REQUIREMENT_PATTERN = r"[A-Z][A-Za-z0-9 _./,()'%:-]+"


def requirements_model(max_items: int):
    """``{"requirements": [...]}`` with 1..``max_items`` plain sentences."""
    from typing import Annotated

    from pydantic import StringConstraints, create_model

    item = Annotated[str, StringConstraints(pattern=REQUIREMENT_PATTERN)]
    return create_model("Requirements", requirements=(list[item], Field(min_length=1, max_length=max_items)))


class RequirementCheck(BaseModel):
    reason: str = Field(default="", max_length=300)
    status: Literal["satisfied", "partially_satisfied", "not_satisfied"]


def label_for(score: float, executed: bool) -> str:
    if not executed:
        return "execution_failed"
    if score >= 0.999:
        return "fully_satisfied"
    return "not_satisfied" if score <= 0.0 else "partially_satisfied"


class EvaluateTools(Stage):
    """Extract the requirements of each instruction, check each against the execution results,
    and score the example 0-1 (satisfied 1, partially 0.5, not 0; mean over requirements).

    Labels: ``fully_satisfied`` | ``partially_satisfied`` | ``not_satisfied`` |
    ``execution_failed`` (some call failed or never ran; score 0). The stage writes
    ``evaluation_report.json`` (counts, mean score) and stores ``metadata["evaluation"]``.

    Attributes:
        min_score: Keep examples scoring at least this.
        strict: Keep only ``fully_satisfied`` examples.
        report_only: Annotate and report, drop nothing.
        max_requirements: Most requirements extracted per instruction.
        requirements_prompt: Prompt that lists requirements; ``check_prompt`` judges one.
        max_tokens: Token budget of one LLM call.
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

    def run(self, records: list[ToolExample], ctx: StageContext) -> list[ToolExample]:
        from synthrun.tools.stagekit import history_text

        executed = {ex.id or str(i): bool(ex.reasoning_path) and all(s.ok for s in ex.reasoning_path)
                    for i, ex in enumerate(records)}
        keys = [ex.id or str(i) for i, ex in enumerate(records)]
        schema = requirements_model(self.max_requirements)
        todo = [(k, ex) for k, ex in zip(keys, records, strict=True) if executed[k]]
        reqs = [LLMRequest(messages=ctx.prompts.render(self.requirements_prompt, instruction=ex.instruction,
                                                       max_requirements=self.max_requirements),
                           schema=schema, params={"max_tokens": self.max_tokens, "temperature": 0.0}, tag=k)
                for k, ex in todo]
        requirements: dict[str, list[str]] = {}
        for res in ctx.llm.map(reqs, desc="requirements") if reqs else []:
            if res.ok:
                items = [" ".join(r.split())[:200] for r in res.parsed.requirements if r.strip()]
                requirements[res.request.tag] = items[: self.max_requirements]
            else:
                ctx.fail(f"requirements_{res.error}")
        by_key = dict(zip(keys, records, strict=True))
        checks = []
        for k, items in requirements.items():
            ex = by_key[k]
            for j, item in enumerate(items):
                checks.append(LLMRequest(
                    messages=ctx.prompts.render(self.check_prompt, instruction=ex.instruction, requirement=item,
                                                history=history_text(ex), answer=ex.final_answer or "(none)"),
                    schema=RequirementCheck, params={"max_tokens": self.max_tokens, "temperature": 0.0}, tag=(k, j)))
        verdicts: dict[str, list[dict]] = {k: [{"requirement": r, "status": None} for r in v] for k, v in requirements.items()}
        for res in ctx.llm.map(checks, desc="check requirements") if checks else []:
            k, j = res.request.tag
            if res.ok:
                verdicts[k][j].update(status=res.parsed.status, reason=res.parsed.reason.strip())
            else:
                verdicts[k][j].update(status="not_satisfied", reason=f"check failed: {res.error}")
        out, dropped = [], []
        counts = {label: 0 for label in LABELS}
        scores = []
        for k, ex in zip(keys, records, strict=True):
            items = verdicts.get(k, [])
            if executed[k] and items:
                score = sum(STATUS_SCORE[v["status"]] for v in items) / len(items)
            else:
                score = 0.0
            label = label_for(score, executed[k]) if (items or not executed[k]) else "not_satisfied"
            counts[label] += 1
            scores.append(score)
            ev = {"score": round(score, 3), "label": label, "requirements": items}
            ex = ex.model_copy(update={"metadata": {**ex.metadata, "evaluation": ev}})
            passed = label == "fully_satisfied" if self.strict else (label != "execution_failed" and score >= self.min_score)
            if passed or self.report_only:
                out.append(ex)
            else:
                ctx.fail(label)
                dropped.append({**ex.model_dump(mode="json"), "dropped_reason": f"{label} (score {score:.2f})"})
        report = {"examples": len(records), "labels": counts,
                  "mean_score": round(sum(scores) / len(scores), 3) if scores else None,
                  "min_score": self.min_score, "strict": self.strict, "report_only": self.report_only,
                  "kept": len(out)}
        write_json(ctx.stage_dir / "evaluation_report.json", report)
        if dropped:
            write_jsonl(ctx.stage_dir / "dropped.jsonl", dropped)
        ctx.summary.update(report)
        return out
