"""Curate tool-use examples: turn-level filtering (ToolMind) and an LLM rating with a threshold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from synthrun.context import StageContext
from synthrun.records import Rating, Record, ToolExample
from synthrun.stages.judge import Check, Judge, combine
from synthrun.stages.llm_stage import Drop, LLMStage

TOOL_CHECKS = [
    Check(name="right_tool", prompt="tool_judge_tool"),
    Check(name="args_match", prompt="tool_judge_args"),
    Check(name="answer_follows", prompt="tool_judge_answer"),
]

#: ``drop(example, why, reason code)``: leave an example out.
_DropFn = Callable[[ToolExample, str, str], None]


class ToolRatingOut(BaseModel):
    clarity: int = Field(ge=0, le=3)
    accuracy: int = Field(ge=0, le=3)
    usefulness: int = Field(ge=0, le=2)
    difficulty: int = Field(ge=0, le=2)
    reasoning: str = Field(default="", max_length=300)


class CurateTools(LLMStage):
    """Drop or truncate examples at their first bad step, then rate and threshold them.

    Turn-level filtering: the first step that is malformed or failed to execute decides.
    ``truncate`` keeps the steps before it (when at least ``min_steps`` remain, re-writing the
    final answer from the kept results when ``rewrite_answer``); ``drop`` removes the example.
    The reason is kept in ``metadata["curation"]`` and dropped examples go to ``dropped.jsonl``
    (``reason``: the counter name, ``detail``: why).

    Rating (``scoring``): ``probability`` (default) asks the focused yes/no checks of
    ``checks`` ("Is this the right tool for the request?", "Do these arguments match the
    request?", "Does the answer follow from the results?") and reads P(yes) from token
    probabilities, the same machinery as the QA :class:`~synthrun.stages.judge.Judge` (one
    forward pass per check on the embedded model; ``logprobs``/``top_logprobs`` on HTTP
    providers, the sampled token where a provider gives none). ``rating.total`` = 10 x the
    combined P(yes); the sub-scores are in ``rating.scores`` and the method in ``rating.method``.
    ``sampled`` is the older integer rating (clarity 0-3, accuracy 0-3, usefulness 0-2,
    difficulty 0-2 sampled as JSON). Examples a ``tool_filter`` in ``mark`` mode failed
    (``gate_failed``) are rated 0 without a call.

    Attributes:
        on_bad_step: drop | truncate | keep (rate as is: judge evaluation on labelled rows).
        min_steps: Fewest steps a truncated example must keep.
        rewrite_answer: Write a new final answer for truncated examples.
        recheck: Run the deterministic tool checks again on truncated examples (their answer is new).
        rate: Rate examples with the LLM.
        scoring: ``probability`` (P(yes) of focused checks) or ``sampled`` (integer criteria).
        checks: The focused checks of the probability judge.
        combine: ``mean``, ``geometric`` or ``min`` of the checks' P(yes).
        method: ``auto`` (probabilities when the provider gives them), ``logprob`` or ``sampled``.
        threshold: Keep examples whose rating total (0-10) is at least this; None keeps all (evaluation).
        require_execution: Drop examples with steps that were never executed.
        prompt: Rating prompt of ``scoring: sampled``; ``answer_prompt`` writes re-done answers.
        max_tokens: Token budget of one sampled rating.
        temperature: Sampling temperature of the sampled rating.
        top_logprobs: Alternatives asked of an HTTP provider.
        model_path: GGUF file of the embedded model (default: the packaged SmolLM2).
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = ToolExample

    on_bad_step: Literal["drop", "truncate", "keep"] = "truncate"
    min_steps: int = Field(default=1, ge=1)
    rewrite_answer: bool = True
    recheck: bool = True
    rate: bool = True
    scoring: Literal["probability", "sampled"] = "probability"
    checks: list[Check] = Field(default_factory=lambda: [c.model_copy() for c in TOOL_CHECKS])
    combine: Literal["mean", "geometric", "min"] = "mean"
    method: Literal["auto", "logprob", "sampled"] = "auto"
    threshold: float | None = Field(default=4.0, ge=0, le=10)
    require_execution: bool = True
    prompt: str = "tool_rate"
    answer_prompt: str = "tool_answer"
    max_tokens: int = Field(default=128, ge=32)
    temperature: float = Field(default=0.0, ge=0, le=2)
    top_logprobs: int = Field(default=20, ge=1, le=20)
    model_path: str | None = None

    def prompt_names(self) -> list[str]:
        names = [self.answer_prompt]
        if self.rate:
            names += [c.prompt for c in self.checks] if self.scoring == "probability" else [self.prompt]
        return names

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        from synthrun.tools.labelled import as_tool_example
        from synthrun.tools.replay import first_bad_step

        kept: list[ToolExample] = []
        drops: list[Drop] = []
        gated: list[ToolExample] = []

        def drop(ex: ToolExample, reason: str, code: str) -> None:
            drops.append(Drop(ex, code, reason))

        truncated: list[ToolExample] = []
        for record in records:
            ex = as_tool_example(record)
            if getattr(ex, "gate_failed", None):
                gated.append(ex)
                continue
            if self.require_execution and any(s.ok is None for s in ex.reasoning_path):
                drop(ex, "not executed (put tool_execute before tool_curate)", "not_executed")
                continue
            bad = first_bad_step(ex) if self.on_bad_step != "keep" else None
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
        if truncated and self.recheck:
            truncated = self._recheck(truncated, drop)
        kept.extend(truncated)
        if self.rate and kept:
            kept = self._rate(kept, ctx, drop) if self.scoring == "sampled" else self._judge(kept, ctx, drop)
        for ex in gated:  # failed a deterministic check upstream: rated 0 without a call
            rating = Rating(clarity=0, accuracy=0, usefulness=0, difficulty=0, total=0.0, judge_model=ctx.model_name,
                            method="gate", scores={}, reasoning=f"failed check: {ex.gate_failed}")
            ex = ex.model_copy(update={"rating": rating})
            if self.threshold:
                drop(ex, str(ex.gate_failed), "gate")
            else:
                kept.append(ex)
        ctx.summary.update({"in": len(records), "kept": len(kept), "truncated": len(truncated),
                            "dropped": len(drops), "gate_failed": len(gated), "scoring": self.scoring,
                            "threshold": self.threshold})
        return self.finish(list(kept), drops, ctx)

    @staticmethod
    def _recheck(examples: list[ToolExample], drop: _DropFn) -> list[ToolExample]:
        from synthrun.scoring.tool_gates import ToolGateConfig, check_all
        from synthrun.tools.replay import example_tools

        out = []
        for ex in examples:
            failed = {k: v for k, v in check_all(ex, example_tools(ex), ToolGateConfig()).items() if v}
            if failed:
                name = next(iter(failed))
                drop(ex, f"after truncation: {failed[name]}", f"check_{name}")
            else:
                out.append(ex)
        return out

    def _rewrite_answers(self, examples: list[ToolExample], ctx: StageContext) -> list[ToolExample]:
        from synthrun.stages.tool_writer import result_values
        from synthrun.tools.generation import AnswerOut, clean_text, clip
        from synthrun.tools.replay import history_text

        items = [(ex, {"instruction": ex.instruction, "history": history_text(ex),
                       "values": (result_values(ex.reasoning_path[-1].result) if ex.reasoning_path else "") or "(none)"})
                 for ex in examples]
        params = [{"max_tokens": self.max_tokens, "seed": ctx.seed + i} for i in range(len(examples))]
        out = []
        for res in self.ask(ctx, items, prompt=self.answer_prompt, schema=AnswerOut, params=params,
                            desc="rewrite answers"):
            ex = res.request.tag
            if res.ok:
                ex = ex.model_copy(update={"final_answer": clip(clean_text(res.parsed.answer), 600)})
            else:
                ctx.fail(f"answer_{res.error}")
            out.append(ex)
        return out

    def _rate(self, examples: list[ToolExample], ctx: StageContext, drop: _DropFn) -> list[ToolExample]:
        from synthrun.tools.generation import tool_line
        from synthrun.tools.replay import example_tools, history_text

        items = [(ex, {"instruction": ex.instruction, "history": history_text(ex),
                       "tools_doc": "\n".join(tool_line(t) for t in example_tools(ex)),
                       "answer": ex.final_answer or "(none)"}) for ex in examples]
        out = []
        for res in self.ask(ctx, items, prompt=self.prompt, schema=ToolRatingOut, params=self.params(None),
                            desc="rate"):
            ex = res.request.tag
            if not res.ok:
                drop(ex, f"rating failed: {res.error}", f"rating_{res.error}")
                continue
            r: ToolRatingOut = res.parsed
            total = float(r.clarity + r.accuracy + r.usefulness + r.difficulty)
            rating = Rating(clarity=r.clarity, accuracy=r.accuracy, usefulness=r.usefulness, difficulty=r.difficulty,
                            total=total, reasoning=r.reasoning.strip(), judge_model=res.model)
            ex = ex.model_copy(update={"rating": rating})
            if self.threshold is not None and total < self.threshold:
                drop(ex, f"rating {total:g} below threshold {self.threshold:g}", "below_threshold")
                continue
            out.append(ex)
        return out

    def judge_vars(self, ex: ToolExample) -> dict[str, Any]:
        """Prompt variables of the probability checks."""
        from synthrun.tools.generation import call_line, tool_line
        from synthrun.tools.replay import example_tools, history_text

        tools = example_tools(ex)
        by_name = {t.name: t for t in tools}
        last = ex.reasoning_path[-1].tool if ex.reasoning_path else ""
        return {"instruction": ex.instruction, "tools_doc": "\n".join(f"- {t.name}: {t.description}" for t in tools),
                "tools_api": "\n".join(tool_line(t) for t in tools), "history": history_text(ex),
                "calls": "\n".join(call_line(s.step, s) for s in ex.reasoning_path) or "(no calls)",
                "last_tool": last, "last_tool_doc": by_name[last].description if last in by_name else "",
                "answer": ex.final_answer or "(none)"}

    def _judge(self, examples: list[ToolExample], ctx: StageContext, drop: _DropFn) -> list[ToolExample]:
        """Probability judge: P(yes) of every check, combined into ``rating.total``."""
        from synthrun.scoring.logprob_judge import Probe

        probes = [Probe(ctx.prompts.render(c.prompt, **self.judge_vars(ex)), c.kind, tuple(c.scale))
                  for ex in examples for c in self.checks]
        scorer = Judge(checks=self.checks, method=self.method, top_logprobs=self.top_logprobs,
                       model_path=self.model_path)
        if ctx.model_name.startswith("local/") and self.method != "sampled":
            values, methods = scorer._score_local(probes, ctx), ["logprob"] * len(probes)
        else:
            values, methods = scorer._score_http(probes, ctx)
        out: list[ToolExample] = []
        used: dict[str, int] = {}
        for n, ex in enumerate(examples):
            k = n * len(self.checks)
            scores = {c.name: values[k + j] for j, c in enumerate(self.checks)}
            method = "+".join(sorted({methods[k + j] for j, c in enumerate(self.checks)
                                      if values[k + j] is not None})) or "none"
            used[method] = used.get(method, 0) + 1
            combined = combine(scores, self.checks, self.combine)
            if combined is None:
                drop(ex, "no check of the judge could be read", "not_rated")
                continue
            total = round(10 * combined, 3)
            pick = [v for v in (scores.get("right_tool"), scores.get("args_match")) if v is not None]
            rating = Rating(clarity=round(3 * (scores.get("args_match") if scores.get("args_match") is not None
                                               else combined)),
                            accuracy=round(3 * (min(pick) if pick else combined)), usefulness=round(2 * combined),
                            difficulty=round(2 * combined), total=total, judge_model=ctx.model_name, method=method,
                            scores={k: (round(v, 4) if v is not None else None) for k, v in scores.items()})
            ex = ex.model_copy(update={"rating": rating})
            if self.threshold is not None and total < self.threshold:
                drop(ex, f"rating {total:g} below threshold {self.threshold:g}", "below_threshold")
                continue
            out.append(ex)
        ctx.summary["methods"] = used
        return out
