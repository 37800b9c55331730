"""The multi-phase LLM loop of the generate stages: write requests, pick tools, write calls, answer.

Every phase is one batched :meth:`~synthrun.stages.llm_stage.LLMStage.ask` over the plans still
open, so ``n`` examples of ``k`` steps cost about ``k + 2`` batches, not ``n * k`` sequential calls.
Each call is run as soon as it is written (:class:`~synthrun.tools.executors.base.Trace`), so the
next prompt shows real results and the next call's schema fits them. Plans, schemas and text checks
come from :mod:`synthrun.tools.generation`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from synthrun.llm.types import LLMResult
from synthrun.records import Provenance, ToolExample, ToolStep, stable_id
from synthrun.stages.llm_stage import Drop
from synthrun.tools.executors.base import parse_ref
from synthrun.tools.generation import (
    FINISH,
    AnswerOut,
    CallSpec,
    Plan,
    Planner,
    RequestOut,
    call_line,
    choice_model,
    clean_text,
    clip,
    difficulty,
    step_model,
    tool_line,
)

if TYPE_CHECKING:
    from synthrun.context import StageContext

#: Prompt of each phase; a stage's ``prompts`` mapping overrides them by key.
DEFAULT_PROMPTS = {"instruction": "tool_instruction", "step": "tool_step", "choose": "tool_choose",
                   "request": "tool_chain_request", "answer": "tool_answer",
                   "request_call": "tool_request_from_call"}

#: The tool checks a written request can fail; a request failing one is re-asked (``check_text``).
REQUEST_CHECKS = ("grounded", "specific_request", "best_tool")


def request_names(steps: Sequence[ToolStep]) -> list[str]:
    """What a request must name for the calls to be grounded: the literal arguments (files, paths, names, numbers)."""
    out: list[str] = []
    for s in steps:
        for value in s.args.values():
            for v in value if isinstance(value, list) else [value]:
                text = v if isinstance(v, str) else str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
                if text.strip() and parse_ref(text) is None and text not in out:
                    out.append(text)
    return out


#: What looks like a file name (``survey.h5``) or an object path (``/site/heights``) in a request.
_NAME_LIKE = re.compile(r"(?<![\w/])(?:/[\w.-]+(?:/[\w.-]+)*|[\w-]{2,}\.[A-Za-z]\w{1,5})(?![\w/])")


def _foreign_names(text: str, names: Sequence[str]) -> list[str]:
    """File names and paths the request names that none of the calls was given (e.g. copied from an example)."""
    known = " ".join(names).lower()
    return [m for m in _NAME_LIKE.findall(text) if m.lower().rstrip(".") not in known]


def result_values(result: Any, limit: int = 8) -> str:
    """The first few scalar values of a result, for the answer prompt to quote (``units=degC, [4, 3]``)."""
    from synthrun.scoring.tool_gates import scalars

    if isinstance(result, list) and result and all(isinstance(v, (int, float, str)) for v in result):
        return json.dumps(result[:limit], ensure_ascii=False, default=str)
    pairs = [(k, v) for k, v in scalars(result, limit * 4) if k != "#len" and v is not None][:limit]
    return ", ".join(f"{k}={v}" if k else str(v) for k, v in pairs)


class WriterStage(Protocol):
    """What the writer uses of its stage (``ToolGenerateBase``): its knobs and :meth:`LLMStage.ask`."""

    @property
    def max_tokens(self) -> int: ...

    @property
    def temperature(self) -> float | None: ...

    @property
    def text_retries(self) -> int: ...

    @property
    def text_tokens(self) -> int: ...

    @property
    def max_steps(self) -> int: ...

    @property
    def answer(self) -> bool: ...

    @property
    def request_from(self) -> str: ...

    @property
    def check_text(self) -> bool: ...

    @property
    def repair(self) -> bool: ...

    @property
    def prompts(self) -> dict[str, str]: ...

    def ask(self, ctx: StageContext, items: Iterable[tuple[Any, dict[str, Any]]], *, prompt: str | Sequence[str],
            schema: type[BaseModel] | Sequence[type[BaseModel] | None] | None = None,
            params: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
            messages: Sequence[list[dict[str, Any]]] | None = None, desc: str = "") -> list[LLMResult]: ...


#: ``build(plan) -> (prompt name, prompt variables)`` for one text phase.
Build = Callable[[Plan], tuple[str, dict[str, Any]]]


class ToolWriter:
    """Writes plans into :class:`~synthrun.records.ToolExample` records with the stage's LLM parts.

    Args:
        stage: The generate stage (its parameters and its :meth:`ask`).
        ctx: The stage context (LLM, prompts, seed, counters).
        planner: Plans and next calls over the spec's tools.
        spec_name: Name of the spec (provenance).
    """

    def __init__(self, stage: WriterStage, ctx: StageContext, planner: Planner, spec_name: str = "tools"):
        self.stage = stage
        self.ctx = ctx
        self.planner = planner
        self.tools = planner.tools
        self.spec_name = spec_name
        self.prompts = {**DEFAULT_PROMPTS, **(stage.prompts or {})}

    # ------------------------------------------------------------------ shared parts

    def _params(self, plan: Plan, step_no: int, max_tokens: int | None = None) -> dict[str, Any]:
        return {"max_tokens": max_tokens or self.stage.max_tokens, "temperature": self.stage.temperature,
                "seed": (self.ctx.seed * 1000003 + plan.idx * 7919 + step_no * 31) % (2**31)}

    @staticmethod
    def _outcome(plan: Plan, i: int) -> tuple[Any, bool | None, str | None]:
        o = plan.trace.outcomes[i] if i < len(plan.trace.outcomes) else None
        return (o.result, o.ok, o.error) if o else (None, None, None)

    @staticmethod
    def _history(plan: Plan) -> str:
        lines = [call_line(i, s, o.result, o.ok, o.error)
                 for i, (s, o) in enumerate(zip(plan.steps, plan.trace.outcomes, strict=False), 1)]
        return "\n".join(lines) or "(none yet)"

    @staticmethod
    def _fail(plan: Plan, reason: str) -> None:
        """The plan ends without an example; it is dropped (and counted) under ``reason``."""
        plan.failed = reason
        plan.done = True

    def _ask_text(self, plans: list[Plan], build: Build, schema: type[BaseModel], field_name: str,
                  accept: Callable[[Plan, str], str | None], desc: str, salt: int,
                  max_tokens: int, keep_checked: bool = False,
                  repair: Callable[[Plan, str], str | None] | None = None) -> dict[int, str]:
        """Ask each plan for one sentence-like field; re-ask (new seed) when ``accept`` rejects it.

        Returns plan.idx -> text for the plans that got an acceptable answer; the last reason of
        the others is returned under ``-1 - idx``. With ``keep_checked`` a plan whose last plausible
        text only failed a tool check (``check_*``) keeps that text (the filter stage decides).
        With ``repair`` (the stage's ``repair: true``), a plan still without an acceptable text after
        the last attempt gets ``repair(plan, its last text that only failed a check, or "")`` when
        ``accept`` takes that; the field is then listed in the plan's ``repaired``.
        """
        got: dict[int, str] = {}
        checked: dict[int, str] = {}  # the last plausible text of a plan that failed only a tool check
        todo = list(plans)
        reason: dict[int, str] = {}
        for attempt in range(self.stage.text_retries + 1):
            if not todo:
                break
            built = [build(plan) for plan in todo]
            params = []
            for plan in todo:
                p = self._params(plan, salt, max_tokens)
                p["seed"] = (p["seed"] + 7777 * attempt) % (2**31)
                params.append(p)
            results = self.stage.ask(self.ctx, [(plan, v) for plan, (_, v) in zip(todo, built, strict=True)],
                                     prompt=[name for name, _ in built], schema=schema, params=params, desc=desc)
            retry = []
            for res in results:
                plan = res.request.tag
                if not res.ok:
                    reason[plan.idx] = str(res.error)
                    retry.append(plan)
                    continue
                text = clip(clean_text(getattr(res.parsed, field_name)), 600)
                why = accept(plan, text)
                if why:
                    reason[plan.idx] = why
                    retry.append(plan)
                    if why.startswith("check_"):
                        checked[plan.idx] = text
                else:
                    got[plan.idx] = text
                    plan.model = plan.model or res.model
            todo = retry
        for plan in todo:
            fixed = repair(plan, checked.get(plan.idx, "")) if repair is not None else None
            if fixed and accept(plan, fixed) is None:
                got[plan.idx] = fixed
                plan.repaired.append(field_name)
            elif keep_checked and plan.idx in checked:
                got[plan.idx] = checked[plan.idx]
            else:
                got[-1 - plan.idx] = reason.get(plan.idx, "failed")
        return got

    def _store(self, plans: list[Plan], got: dict[int, str], attr: str, what: str, fatal: bool) -> None:
        for plan in plans:
            if plan.idx in got:
                setattr(plan, attr, got[plan.idx])
            elif fatal:
                self._fail(plan, f"{what}_{got.get(-1 - plan.idx, 'failed')}")
            else:
                self.ctx.fail(f"{what}_{got.get(-1 - plan.idx, 'failed')}")

    # ------------------------------------------------------------------ phases

    def write_instructions(self, plans: list[Plan]) -> None:
        """Query-first with ``request_from: model``: the request is written before the calls."""
        def build(plan: Plan) -> tuple[str, dict[str, Any]]:
            needed = [self.tools[n] for n in dict.fromkeys(plan.chain)]
            return self.prompts["instruction"], dict(
                target=plan.target, tools_doc="\n".join(tool_line(t) for t in needed),
                environment=plan.env_text, n_steps=len(plan.chain), mode=plan.mode,
                target_doc=tool_line(self.tools[plan.target]) if plan.target else "")

        got = self._ask_text(plans, build, RequestOut, "request", self.planner.request_problem, "write requests", 0,
                             self.stage.text_tokens)
        self._store(plans, got, "instruction", "instruction", fatal=True)

    def choose_tools(self, plans: list[Plan]) -> None:
        """Free selection: the model picks each plan's next tool (or ``finish``) from those that can run."""
        items, schemas, params = [], [], []
        for plan in plans:
            options = self.planner.valid_options(plan)
            if len(plan.steps) >= plan.min_steps:
                options.append(FINISH)
            if not options or options == [FINISH]:
                plan.done = True
                continue
            items.append((plan, dict(
                instruction=plan.instruction, environment=plan.env_text,
                tools_doc="\n".join(tool_line(t) for t in plan.offered), history=self._history(plan),
                options=", ".join(options), step=len(plan.steps) + 1)))
            schemas.append(choice_model(options))
            params.append(self._params(plan, 100 + len(plan.steps)))
        for res in self.stage.ask(self.ctx, items, prompt=self.prompts["choose"], schema=schemas, params=params,
                                  desc="choose tools"):
            plan = res.request.tag
            if not res.ok:
                self._fail(plan, f"choose_{res.error}")
            elif res.parsed.tool == FINISH:
                plan.done = True
            else:
                plan.pending_tool = res.parsed.tool
                plan.pending_thought = clip(res.parsed.thought.strip(), 300)

    def write_calls(self, plans: list[Plan]) -> None:
        """Each open plan's next call: the model writes the free arguments, the call runs at once."""
        items, schemas, params = [], [], []
        for plan in plans:
            spec = self.planner.next_call(plan)
            if spec is None:
                self._fail(plan, "no_valid_arguments")
                continue
            i = len(plan.steps)
            guided = plan.selection == "guided"
            items.append(((plan, spec), dict(
                instruction=plan.instruction, environment=plan.env_text, tool_doc=tool_line(spec.tool),
                history=self._history(plan), bound=", ".join(f"{k}={v}" for k, v in spec.bound.items()),
                step=i + 1, n_steps=len(plan.chain) if guided else plan.max_steps,
                strategy=plan.strategy, with_thought=guided)))
            schemas.append(step_model(spec.tool, spec.free, spec.hints, with_thought=guided))
            params.append(self._params(plan, i + 1))
        for res in self.stage.ask(self.ctx, items, prompt=self.prompts["step"], schema=schemas, params=params,
                                  desc="write calls"):
            plan, spec = res.request.tag
            if not res.ok:
                self._fail(plan, f"call_{res.error}")
                continue
            self._run_call(plan, spec, res.parsed)

    def _run_call(self, plan: Plan, spec: CallSpec, parsed: Any) -> None:
        """Add the written call to the plan and run it now."""
        written = parsed.args.model_dump(by_alias=True)
        bound = spec.bound
        args = {p.name: (bound[p.name] if p.name in bound else written[p.name])
                for p in spec.tool.parameters if p.name in bound or p.name in written}
        thought = clip(parsed.thought.strip(), 300) if hasattr(parsed, "thought") else plan.pending_thought
        plan.steps.append(ToolStep(step=len(plan.steps) + 1, thought=thought, tool=spec.tool.name, args=args))
        plan.pending_tool = None
        outcome = plan.trace.run(spec.tool.name, args)
        if not outcome.ok or len(plan.steps) >= plan.max_steps:
            plan.done = True  # after a failed call later calls would build on it; curation decides

    # ------------------------------------------------------------------ checks on what the model wrote

    def _draft(self, plan: Plan, request: str | None = None, answer: str | None = None) -> ToolExample:
        """The example as it would be with this request / answer, the calls carrying their real results."""
        steps = []
        for i, s in enumerate(plan.steps):
            result, ok, error = self._outcome(plan, i)
            steps.append(s.model_copy(update={"result": result, "ok": ok, "error": error}))
        return ToolExample(id=f"draft-{plan.idx}", instruction=request if request is not None else plan.instruction,
                           tools=[t.model_dump(mode="json") for t in plan.offered], reasoning_path=steps,
                           final_answer=answer if answer is not None else plan.final_answer)

    def _failed_check(self, example: ToolExample, plan: Plan, names: list[str]) -> str | None:
        """The first of the tool checks ``names`` the draft fails (``check_<name>``), or None."""
        from synthrun.scoring.tool_gates import ToolGateConfig, check_all

        failed = check_all(example, list(plan.offered), ToolGateConfig(allow_failed_steps=True), names)
        return next((f"check_{name}" for name, why in failed.items() if why), None)

    def _request_ok(self, plan: Plan, text: str) -> str | None:
        """A request is re-asked when it is degenerate or fails a check a request can fail."""
        why = self.planner.request_problem(plan, text)
        if why or not self.stage.check_text:
            return why
        return self._failed_check(self._draft(plan, request=text), plan, list(REQUEST_CHECKS))

    def _answer_ok(self, plan: Plan, text: str) -> str | None:
        """An answer is re-asked when it is degenerate or states no value of the results it relies on."""
        why = self.planner.answer_problem(plan, text)
        if why or not self.stage.check_text:
            return why
        return self._failed_check(self._draft(plan, answer=text), plan, ["answer_uses_results"])

    def _repair_request(self, plan: Plan, text: str) -> str | None:
        """The model's request with the literal values it left out appended (``... (climate.h5, /a/b)``).

        Only a request that failed a check can be repaired: a degenerate one (no text) cannot.
        """
        names = request_names(plan.steps)
        low = text.lower()
        missing = [n for n in names if n.lower() not in low]
        if not text or not missing or _foreign_names(text, names):
            return None
        return f"{text.rstrip()} ({', '.join(missing)})"

    def _last_values(self, plan: Plan) -> str:
        """The first values of the plan's last result (what its final answer should state), or ""."""
        return result_values(self._outcome(plan, len(plan.steps) - 1)[0]) if plan.steps else ""

    def _repair_answer(self, plan: Plan, text: str) -> str | None:
        """The values of the last result stated after the model's answer (or alone when it wrote none usable)."""
        values = self._last_values(plan)
        if not values:
            return None
        return f"{text.rstrip()} Result: {values}." if text else f"Result: {values}."

    def _request_after_calls(self, plan: Plan) -> bool:
        return plan.strategy == "query_first" and plan.selection == "guided" and self.stage.request_from == "call"

    def write_requests(self, plans: list[Plan]) -> None:
        """Chain-first (and guided query-first): the request the finished calls answer."""
        def build(plan: Plan) -> tuple[str, dict[str, Any]]:
            name = self.prompts["request_call"] if plan.strategy == "query_first" else self.prompts["request"]
            last = len(plan.steps)
            return name, dict(
                environment=plan.env_text, history=self._history(plan), n_steps=last,
                tools_doc="\n".join(tool_line(plan.tools[s.tool]) for s in plan.steps),
                last_call=call_line(last, plan.steps[-1], *self._outcome(plan, last - 1)) if last else "",
                names=", ".join(request_names(plan.steps)) or "(none)")

        got = self._ask_text(plans, build, RequestOut, "request", self._request_ok, "write requests",
                             500, self.stage.text_tokens,
                             repair=self._repair_request if self.stage.repair else None)
        self._store(plans, got, "instruction", "instruction", fatal=True)

    def write_answers(self, plans: list[Plan]) -> None:
        """A final answer grounded in the real results (a missing one is counted, not fatal)."""
        def build(plan: Plan) -> tuple[str, dict[str, Any]]:
            return self.prompts["answer"], dict(instruction=plan.instruction, history=self._history(plan),
                                                values=self._last_values(plan) or "(none)")

        got = self._ask_text(plans, build, AnswerOut, "answer", self._answer_ok, "write answers", 900,
                             self.stage.text_tokens + 32, keep_checked=True,
                             repair=self._repair_answer if self.stage.repair else None)
        self._store(plans, got, "final_answer", "answer", fatal=False)

    # ------------------------------------------------------------------ all phases

    def run(self, plans: list[Plan], drops: list[Drop]) -> list[ToolExample]:
        """Write all plans (batched across plans at every phase); failed plans go to ``drops``."""
        try:
            self.write_instructions([p for p in plans if p.strategy == "query_first"
                                     and not self._request_after_calls(p)])
            for _ in range(self.stage.max_steps):
                active = [p for p in plans if not p.done]
                self.choose_tools([p for p in active if p.selection == "free"])
                ready = [p for p in active if not p.done and (p.selection == "guided" or p.pending_tool)]
                if not ready:
                    break
                self.write_calls(ready)
            for p in plans:
                if not p.failed and not p.steps:
                    self._fail(p, "no_steps")
            self.write_requests([p for p in plans if not p.failed and (
                p.strategy == "chain_first" or self._request_after_calls(p))])
            if self.stage.answer:
                self.write_answers([p for p in plans if not p.failed])
        finally:
            for p in plans:
                p.trace.close()
        drops.extend(Drop(self.to_example(p), str(p.failed), f"attempt {p.idx} ({p.strategy}, {p.mode})")
                     for p in plans if p.failed)
        return [self.to_example(p) for p in plans if not p.failed]

    def to_example(self, plan: Plan) -> ToolExample:
        """The example a plan became (its metadata says how it was planned and whether every call ran)."""
        used = [self.tools[s.tool] for s in plan.steps]
        needed = {s.tool for s in plan.steps}
        meta = {
            "mode": plan.mode, "strategy": plan.strategy, "selection": plan.selection,
            "difficulty": difficulty(len(plan.steps), used), "target_tool": plan.target,
            "planned_chain": plan.chain, "n_steps": len(plan.steps),
            "distractors": [t.name for t in plan.offered if t.name not in needed],
            "environment": plan.env, "spec": self.spec_name,
            "live_ok": all(o.ok for o in plan.trace.outcomes),
            "repaired": list(plan.repaired),
        }
        ctx = self.ctx
        return ToolExample(
            id=stable_id(ctx.run_id, ctx.name, plan.idx, plan.strategy, plan.target, prefix="tool-"),
            instruction=plan.instruction, tools=[t.model_dump(mode="json") for t in plan.offered],
            reasoning_path=plan.steps, final_answer=plan.final_answer, metadata=meta,
            provenance=Provenance(source=self.spec_name, model=plan.model or ctx.model_name,
                                  prompt=self.prompts["step"], run_id=ctx.run_id, stage=ctx.name),
        )
