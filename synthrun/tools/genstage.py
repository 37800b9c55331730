"""Parameters and set-up shared by the two generate stages."""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from synthrun.records import Record, ToolExample
from synthrun.stage import Stage
from synthrun.tools.stagekit import ToolRecord, tools_from_input


class ToolGenerateBase(Stage):
    """Common knobs of ``tool_generate`` and ``tool_generate_chain``.

    Attributes:
        n_examples: Examples to produce (failed attempts are re-planned up to ``max_rounds`` times).
        max_steps: Most calls in one example.
        min_steps: Fewest calls in a multi-step or chain example.
        n_distractors: Unneeded tools offered beside the needed ones (teaches tool selection).
        executors: Executors used live while writing (first that supports a tool wins).
        answer: Write a final answer grounded in the real results.
        temperature: Sampling temperature of the model.
        max_tokens: Token budget of one call (thought and arguments).
        text_tokens: Token budget of a request (the final answer gets 32 more).
        text_retries: Re-asks (with a new seed) when a request or answer looks degenerate.
        min_confidence: Weakest dependency-graph link used for planning.
        optional_rate: Chance that an optional parameter is filled in.
        spec: Read tools from this spec instead of the input records.
        spec_format: Format of ``spec`` (auto | synthrun | openai | mcp | openapi).
        max_rounds: Planning rounds to reach ``n_examples`` when some attempts fail.
        oversample: Plan this many times ``n_examples`` in the first round (the extra are
            dropped when not needed); cheaper than another round of sequential LLM calls.
        prompts: Prompt name overrides (keys: instruction, step, choose, request, request_call, answer).
        request_from: ``call`` (default): a guided query-first example gets its request after its
            calls ran, written from the calls and their real results (what would a user ask that
            this answers?); ``model``: the request is written first, then the calls.
    """

    needs_all_records: ClassVar[bool] = True  # n_examples for the whole input

    input_type: ClassVar[type[Record]] = ToolRecord
    output_type: ClassVar[type[Record]] = ToolExample

    n_examples: int = Field(default=10, ge=1)
    max_steps: int = Field(default=4, ge=1, le=10)
    min_steps: int = Field(default=2, ge=1)
    n_distractors: int = Field(default=3, ge=0)
    executors: list[str] = Field(default_factory=lambda: ["hdf5", "simulated"])
    answer: bool = True
    temperature: float = Field(default=0.7, ge=0)
    max_tokens: int = Field(default=128, ge=32)
    text_tokens: int = Field(default=64, ge=16)
    text_retries: int = Field(default=2, ge=0)
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    optional_rate: float = Field(default=0.3, ge=0, le=1)
    spec: str | None = None
    spec_format: Literal["auto", "synthrun", "openai", "mcp", "openapi", "bfcl"] = "auto"
    max_rounds: int = Field(default=2, ge=1)
    oversample: float = Field(default=1.3, ge=1.0, le=3.0)
    prompts: dict[str, str] = Field(default_factory=dict)
    request_from: Literal["call", "model"] = "call"

    @model_validator(mode="after")
    def _steps(self):
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) must not exceed max_steps ({self.max_steps})")
        return self

    def _setup(self, records: list[Any], ctx):
        from synthrun.tools.executors import build_engine
        from synthrun.tools.generation import ToolDataGenerator
        from synthrun.tools.graph import ToolGraph

        tools, spec_name = tools_from_input(records, self.spec, self.spec_format, ctx.name)
        engine = build_engine(self.executors, ctx.stage_dir / "work")
        graph = ToolGraph(tools, self.min_confidence)
        gen = ToolDataGenerator(tools, ctx, engine, graph, n_distractors=self.n_distractors,
                                max_steps=self.max_steps, min_steps=self.min_steps, temperature=self.temperature,
                                max_tokens=self.max_tokens, answer=self.answer, spec_name=spec_name,
                                optional_rate=self.optional_rate, prompts=self.prompts,
                                text_retries=self.text_retries, text_tokens=self.text_tokens,
                                request_from=self.request_from)
        return gen, engine, random.Random(ctx.seed)

    def _generate(self, gen, engine, make_plan, ctx) -> list[ToolExample]:
        """Plan and write examples in rounds until ``n_examples`` are done or rounds run out."""
        out: list[ToolExample] = []
        next_idx = 0
        try:
            for round_no in range(self.max_rounds):
                need = self.n_examples - len(out)
                if need <= 0:
                    break
                if round_no == 0:
                    need = max(need, math.ceil(need * self.oversample))
                plans = []
                for _ in range(need):
                    plan = make_plan(next_idx)
                    next_idx += 1
                    if plan is None:
                        ctx.fail("no_plan")
                        continue
                    plans.append(plan)
                if not plans:
                    break
                out.extend(gen.run(plans))
        finally:
            engine.close()
        if len(out) > self.n_examples:
            ctx.summary["surplus_dropped"] = len(out) - self.n_examples
        out = out[: self.n_examples]
        ctx.summary["examples"] = len(out)
        ctx.summary["attempts"] = next_idx
        for key in ("mode", "strategy", "difficulty"):
            counts: dict[str, int] = {}
            for ex in out:
                v = str(ex.metadata.get(key))
                counts[v] = counts.get(v, 0) + 1
            ctx.summary[key] = counts
        ctx.summary["live_ok"] = sum(bool(ex.metadata.get("live_ok")) for ex in out)
        return out
