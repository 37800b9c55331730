"""Curate tool-use examples: turn-level filtering (ToolMind) and an LLM rating with a threshold."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from synthrun.context import StageContext
from synthrun.io import write_jsonl
from synthrun.llm.types import LLMRequest
from synthrun.records import Rating, Record, ToolExample
from synthrun.stage import Stage


class ToolRatingOut(BaseModel):
    clarity: int = Field(ge=0, le=3)
    accuracy: int = Field(ge=0, le=3)
    usefulness: int = Field(ge=0, le=2)
    difficulty: int = Field(ge=0, le=2)
    reasoning: str = Field(default="", max_length=300)


class CurateTools(Stage):
    """Drop or truncate examples at their first bad step, then rate and threshold them.

    Turn-level filtering: the first step that is malformed or failed to execute decides.
    ``truncate`` keeps the steps before it (when at least ``min_steps`` remain, re-writing the
    final answer from the kept results when ``rewrite_answer``); ``drop`` removes the example.
    The reason is kept in ``metadata["curation"]`` and dropped examples go to ``dropped.jsonl``.

    Attributes:
        on_bad_step: drop | truncate.
        min_steps: Fewest steps a truncated example must keep.
        rewrite_answer: Write a new final answer for truncated examples.
        rate: Rate examples with the LLM (clarity 0-3, accuracy 0-3, usefulness 0-2, difficulty 0-2).
        threshold: Keep examples whose rating total (0-10) is at least this.
        require_execution: Drop examples with steps that were never executed.
        prompt: Rating prompt; ``answer_prompt`` writes re-done answers.
        max_tokens: Token budget of one rating.
    """

    input_type: ClassVar[type[Record]] = ToolExample
    output_type: ClassVar[type[Record]] = ToolExample

    on_bad_step: Literal["drop", "truncate"] = "truncate"
    min_steps: int = Field(default=1, ge=1)
    rewrite_answer: bool = True
    rate: bool = True
    threshold: float = Field(default=4.0, ge=0, le=10)
    require_execution: bool = True
    prompt: str = "tool_rate"
    answer_prompt: str = "tool_answer"
    max_tokens: int = Field(default=128, ge=32)

    def run(self, records: list[ToolExample], ctx: StageContext) -> list[ToolExample]:
        from synthrun.tools.stagekit import first_bad_step

        kept: list[ToolExample] = []
        dropped: list[dict] = []

        def drop(ex: ToolExample, reason: str, code: str) -> None:
            ctx.fail(code)
            dropped.append({**ex.model_dump(mode="json"), "dropped_reason": reason})

        truncated: list[ToolExample] = []
        for ex in records:
            if self.require_execution and any(s.ok is None for s in ex.reasoning_path):
                drop(ex, "not executed (put tool_execute before tool_curate)", "not_executed")
                continue
            bad = first_bad_step(ex)
            if bad is None:
                kept.append(ex.model_copy(update={"metadata": {**ex.metadata, "curation": {"action": "kept"}}}))
                continue
            index, reason = bad
            if self.on_bad_step == "drop" or index - 1 < self.min_steps:
                drop(ex, reason, "bad_step_dropped")
                continue
            steps = ex.reasoning_path[: index - 1]
            meta = {**ex.metadata, "curation": {"action": "truncated", "reason": reason, "kept_steps": len(steps),
                                                "original_steps": len(ex.reasoning_path)},
                    "execution_ok": True, "format_ok": True, "format_issues": []}
            new = ex.model_copy(update={"reasoning_path": steps, "metadata": meta})
            truncated.append(new)
            ctx.fail("bad_step_truncated")
        if truncated and self.rewrite_answer:
            truncated = self._rewrite_answers(truncated, ctx)
        kept.extend(truncated)
        if self.rate and kept:
            kept = self._rate(kept, ctx, drop)
        ctx.summary.update({"in": len(records), "kept": len(kept), "truncated": len(truncated),
                            "dropped": len(dropped)})
        write_jsonl(ctx.stage_dir / "dropped.jsonl", dropped)
        return kept

    def _rewrite_answers(self, examples: list[ToolExample], ctx: StageContext) -> list[ToolExample]:
        from synthrun.tools.generation import _Answer, clean_text, clip
        from synthrun.tools.stagekit import history_text

        reqs = [LLMRequest(messages=ctx.prompts.render(self.answer_prompt, instruction=ex.instruction,
                                                       history=history_text(ex)),
                           schema=_Answer, params={"max_tokens": self.max_tokens, "seed": ctx.seed + i}, tag=ex)
                for i, ex in enumerate(examples)]
        out = []
        for res in ctx.llm.map(reqs, desc="rewrite answers"):
            ex = res.request.tag
            if res.ok:
                ex = ex.model_copy(update={"final_answer": clip(clean_text(res.parsed.answer), 600)})
            else:
                ctx.fail(f"answer_{res.error}")
            out.append(ex)
        return out

    def _rate(self, examples: list[ToolExample], ctx: StageContext, drop) -> list[ToolExample]:
        from synthrun.tools.generation import tool_line
        from synthrun.tools.stagekit import example_tools, history_text

        reqs = [LLMRequest(messages=ctx.prompts.render(
                    self.prompt, instruction=ex.instruction, history=history_text(ex),
                    tools_doc="\n".join(tool_line(t) for t in example_tools(ex)), answer=ex.final_answer or "(none)"),
                    schema=ToolRatingOut, params={"max_tokens": self.max_tokens, "temperature": 0.0}, tag=ex)
                for ex in examples]
        out = []
        for res in ctx.llm.map(reqs, desc="rate"):
            ex = res.request.tag
            if not res.ok:
                drop(ex, f"rating failed: {res.error}", f"rating_{res.error}")
                continue
            r: ToolRatingOut = res.parsed
            total = float(r.clarity + r.accuracy + r.usefulness + r.difficulty)
            rating = Rating(clarity=r.clarity, accuracy=r.accuracy, usefulness=r.usefulness, difficulty=r.difficulty,
                            total=total, reasoning=r.reasoning.strip(), judge_model=res.model)
            ex = ex.model_copy(update={"rating": rating})
            if total < self.threshold:
                drop(ex, f"rating {total:g} below threshold {self.threshold:g}", "below_threshold")
                continue
            out.append(ex)
        return out
