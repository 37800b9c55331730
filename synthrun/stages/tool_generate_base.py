"""Parameters, set-up and the round loop shared by the two generate stages (``tool_generate``, ``tool_generate_chain``)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from synthrun.errors import StageError
from synthrun.records import Record, ToolExample, ToolRecord
from synthrun.stages.llm_stage import Drop, LLMStage
from synthrun.tools.loading import load_spec
from synthrun.tools.spec import ToolSpec

if TYPE_CHECKING:
    from synthrun.context import StageContext
    from synthrun.stages.tool_writer import ToolWriter
    from synthrun.tools.generation import Plan, Planner


def tools_from_input(records: list[Any], spec: str | None, fmt: str = "auto", where: str = "") -> tuple[list[ToolSpec], str]:
    """The tools a generate stage works on: from ``spec`` when given, else from ``tool_parse`` records."""
    if spec:
        toolset = load_spec(spec, fmt)
        return toolset.tools, toolset.name
    tools = []
    name = ""
    for r in records:
        tool = getattr(r, "tool", None)
        if tool is None:
            raise StageError(f"{where}: input records carry no 'tool' (put a tool_parse stage first or set spec=...)")
        tools.append(tool if isinstance(tool, ToolSpec) else ToolSpec.model_validate(tool))
        name = getattr(r, "spec_name", "") or name
    if not tools:
        raise StageError(f"{where}: no tools (put a tool_parse stage first or set spec=path/to/spec.json)")
    return tools, name or "tools"


class ToolGenerateBase(LLMStage):
    """Common knobs of ``tool_generate`` and ``tool_generate_chain``.

    A multi-phase :class:`~synthrun.stages.llm_stage.LLMStage`: the phases (request, tool choice,
    calls, answer) are batched ``ask`` calls made by :class:`~synthrun.stages.tool_writer.ToolWriter`;
    attempts that end without an example are written to ``dropped.jsonl`` under their reason.

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
        check_text: Re-ask (up to ``text_retries``) a request written after the calls that fails a
            tool check a request can fail (grounded, specific_request, best_tool) and an answer that
            states no value of the results it relies on (answer_uses_results): the filter stage would
            drop them, and a second sample of a small model often passes. A request still failing
            drops the plan (another round replaces it); an answer keeps its last plausible text.
            Off by default; the hdf5_tools recipe turns it on with its filter.
        repair: After the last re-ask, complete a text the checks still reject instead of dropping
            the plan: a request gets the literal values it left out appended in parentheses, an
            answer the values of the last result (``Result: ...``; alone when the model wrote no
            usable answer). The example's ``metadata.repaired`` lists the completed fields, so they
            can be told apart. Off by default; the hdf5_tools recipe turns it on (a 135M model
            rarely names every value).
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
    check_text: bool = False
    repair: bool = False

    @model_validator(mode="after")
    def _steps(self) -> ToolGenerateBase:
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) must not exceed max_steps ({self.max_steps})")
        return self

    def _setup(self, records: list[Any], ctx: StageContext) -> tuple[Planner, ToolWriter, random.Random]:
        """The planner over the input's tools (with live executors) and the writer of its plans."""
        from synthrun.stages.tool_writer import ToolWriter
        from synthrun.tools.executors import build_engine
        from synthrun.tools.generation import Planner
        from synthrun.tools.graph import ToolGraph

        tools, spec_name = tools_from_input(records, self.spec, self.spec_format, ctx.name)
        engine = build_engine(self.executors, ctx.stage_dir / "work")
        planner = Planner(tools, engine, ToolGraph(tools, self.min_confidence), n_distractors=self.n_distractors,
                          max_steps=self.max_steps, min_steps=self.min_steps, optional_rate=self.optional_rate)
        return planner, ToolWriter(self, ctx, planner, spec_name), random.Random(ctx.seed)

    def _generate(self, planner: Planner, writer: ToolWriter, make_plan: Callable[[int], Plan | None],
                  ctx: StageContext) -> list[Record]:
        """Plan and write examples in rounds until ``n_examples`` are done or rounds run out."""
        out: list[ToolExample] = []
        drops: list[Drop] = []
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
                out.extend(writer.run(plans, drops))
        finally:
            planner.engine.close()
        self._summarize(out, next_idx, ctx)
        return self.finish(list(out[: self.n_examples]), drops, ctx)

    def _summarize(self, out: list[ToolExample], attempts: int, ctx: StageContext) -> None:
        if len(out) > self.n_examples:
            ctx.summary["surplus_dropped"] = len(out) - self.n_examples
        out = out[: self.n_examples]
        ctx.summary["examples"] = len(out)
        ctx.summary["attempts"] = attempts
        for key in ("mode", "strategy", "difficulty"):
            counts: dict[str, int] = {}
            for ex in out:
                v = str(ex.metadata.get(key))
                counts[v] = counts.get(v, 0) + 1
            ctx.summary[key] = counts
        ctx.summary["live_ok"] = sum(bool(ex.metadata.get("live_ok")) for ex in out)
