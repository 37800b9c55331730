"""Plan and write tool-use examples with the LLM, step by step, against live executors.

Two strategies share one loop:

* **query-first** (``tool_generate``): pick a target tool, plan the calls it needs from the
  dependency graph, let the model write the user request, then each call. With
  ``selection="guided"`` the planned tools are called in order; with ``"free"`` the model picks
  each next tool itself from the offered ones that can run at that point.
* **chain-first** (``tool_generate_chain``, ToolGrad): sample a valid chain from the graph, let
  the model fill each call, run it, and only then write the request the chain answers.

Every call the model writes is constrained by a JSON schema built for that moment: ``tool`` is
an enum of the tools that can run next, handle inputs are bound to ``$stepN`` references by the
planner, and other inputs are typed per parameter, with enums of real values (file names,
dataset paths, attribute names ...) from the executor where it knows them. Each call is run as
soon as it is written, so the next prompt shows real results and the next hints fit them.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from synthrun.llm.types import LLMRequest
from synthrun.records import Provenance, ToolExample, ToolStep, stable_id
from synthrun.tools.executors.base import ExecutionEngine, ToolCallError, Trace, parse_ref
from synthrun.tools.graph import Binding, ToolGraph
from synthrun.tools.spec import ParamSpec, ToolSpec, TypeSystem, type_parts

FINISH = "finish"
_PREFIX = re.compile(r"^\s*(here(?: is|'s)[^:]*:|request:|user request:|question:|answer:|final answer:)\s*", re.I)


# Patterns keep the small default model on natural sentences: a fixed set of openings and a
# plain character set (no JSON, no markup). They are unanchored and unbounded on purpose: the
# embedded decoder compiles bounded repetitions into huge automata; max_tokens bounds length.
REQUEST_PATTERN = (r"(What|Which|How|Can you|Could you|Please|Show|List|Find|Tell me|Give me|Is|Are|Does|Do|"
                   r"Read|Check|Compare|Get) [A-Za-z0-9 _./,()'%:-]+[?.]")
THOUGHT_PATTERN = r"(I need to|I will|I should|First,|Next,|Now|To answer this,) [A-Za-z0-9 _./,()'%:-]+[.]"
ANSWER_PATTERN = r"[A-Z][A-Za-z0-9 _./,()'%:;=+\[\]-]+[.]"
Thought = Annotated[str, StringConstraints(pattern=THOUGHT_PATTERN)]


class _Request(BaseModel):
    request: str = Field(pattern=REQUEST_PATTERN)


class _Answer(BaseModel):
    answer: str = Field(pattern=ANSWER_PATTERN)


def plausible(text: str, min_words: int = 4, max_words: int = 60, min_letters: float = 0.6) -> bool:
    """A cheap filter for degenerate model text (too short or long, mostly digits or symbols)."""
    words = text.split()
    if not min_words <= len(words) <= max_words:
        return False
    letters = sum(ch.isalpha() for ch in text)
    if letters < min_letters * len(text.replace(" ", "")):
        return False
    if any(sum(ch.isdigit() for ch in w) > 8 for w in words):  # runs of digits: the model is looping
        return False
    if max(words.count(w) for w in set(words)) > max(3, len(words) // 6):
        return False
    return not _repeats(text, 4)


def _repeats(text: str, n: int = 6) -> bool:
    """True when some run of ``n`` words occurs twice (a model stuck in a loop)."""
    words = text.lower().split()
    seen = set()
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        if gram in seen:
            return True
        seen.add(gram)
    return False


def clip(text: str, limit: int) -> str:
    """Cut ``text`` at the last sentence end (or word) before ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("? "))
    return cut[: end + 1] if end > limit // 2 else cut.rsplit(" ", 1)[0] + "..."


def clean_text(text: str) -> str:
    """Strip lead-ins ("Here is a request:"), wrapping quotes and extra whitespace."""
    text = " ".join(str(text or "").split())
    for _ in range(2):
        text = _PREFIX.sub("", text).strip()
        if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'`":
            text = text[1:-1].strip()
    return text


def copies_description(request: str, description: str, min_chars: int = 25) -> bool:
    """True when ``request`` copies the tool ``description`` instead of asking in its own words.

    A copy is a shared run of ``min_chars`` characters; a shorter description (a few words)
    counts as copied only when it makes up most of the request. An empty description is never
    copied.
    """
    from difflib import SequenceMatcher

    low = " ".join(request.lower().split())
    desc = " ".join(str(description or "").lower().split()).strip(" .")
    if not desc or not low:
        return False
    match = SequenceMatcher(None, low, desc, autojunk=False).find_longest_match(0, len(low), 0, len(desc))
    if len(desc) >= min_chars:
        return match.size >= min_chars
    return match.size == len(desc) and len(desc) >= 0.6 * len(low.strip(" .?!"))


def short_json(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tool_line(tool: ToolSpec) -> str:
    """One-line API documentation of a tool for prompts."""
    params = ", ".join(f"{p.name}{'' if p.required else '?'}: {p.type}" for p in tool.parameters)
    return f"- {tool.name}({params}) -> {tool.returns.type}: {tool.description}"


def call_line(i: int, step: ToolStep, result: Any = None, ok: bool | None = None, error: str | None = None) -> str:
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in step.args.items())
    line = f"{i}. {step.tool}({args})"
    if ok is True:
        line += f" -> {short_json(result)}"
    elif ok is False:
        line += f" -> ERROR {error}"
    return line


def difficulty(n_steps: int, tools: list[ToolSpec]) -> str:
    if n_steps >= 4 or (n_steps >= 2 and any(t.complexity == "complex" for t in tools)):
        return "hard"
    if n_steps >= 2 or any(t.complexity != "simple" for t in tools):
        return "medium"
    return "easy"


# ---------------------------------------------------------------------------- schemas


def _field_type(param: ParamSpec, ts: TypeSystem, hints: list[Any] | None):
    """The Python type (for a pydantic field) that constrains one argument."""
    base = ts.base(type_parts(param.type)[0]) if len(type_parts(param.type)) == 1 else "any"
    schema = param.json_schema or {}
    if hints:
        choices = tuple(dict.fromkeys(h for h in hints if isinstance(h, (str, int, float, bool))))
        if choices:
            if base == "array":
                return Annotated[list[Literal[choices]], Field(min_length=1, max_length=3)]  # type: ignore[valid-type]
            return Literal[choices]  # type: ignore[valid-type]
    if param.enum:
        return Literal[tuple(param.enum)]  # type: ignore[valid-type]
    if base == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return Annotated[int, Field(ge=lo if lo is not None else 0, le=hi if hi is not None else 10000)]
    if base == "number":
        return float
    if base == "boolean":
        return bool
    if base == "array":
        items = schema.get("items") or {}
        if isinstance(items.get("enum"), list) and items["enum"]:
            return Annotated[list[Literal[tuple(items["enum"])]], Field(min_length=1, max_length=4)]  # type: ignore[valid-type]
        item_t = {"integer": int, "number": float, "boolean": bool}.get(str(items.get("type")), None)
        if item_t is not None:
            return Annotated[list[item_t], Field(min_length=1, max_length=4)]
        return Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=60)]],
                         Field(min_length=1, max_length=3)]
    if base == "object":
        return dict[str, Annotated[str, StringConstraints(max_length=60)]]
    return Annotated[str, StringConstraints(min_length=1, max_length=80)]


def args_model(tool: ToolSpec, params: list[ParamSpec], hints: dict[str, list[Any]], name: str) -> type[BaseModel]:
    """A pydantic model of the arguments the model must write (others are bound by the planner)."""
    ts = tool.type_system()
    fields: dict[str, Any] = {}
    for i, p in enumerate(params):
        fields[f"a{i}_{re.sub(r'[^A-Za-z0-9_]', '_', p.name)}"] = (
            _field_type(p, ts, hints.get(p.name)), Field(alias=p.name, description=p.description[:120] or None))
    return create_model(name, __config__=ConfigDict(populate_by_name=True), **fields)


def step_model(tool: ToolSpec, params: list[ParamSpec], hints: dict[str, list[Any]], with_thought: bool = True):
    """``{"thought", "args"}`` for one call of ``tool``."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", tool.name)
    args = args_model(tool, params, hints, f"Args_{safe}")
    fields: dict[str, Any] = {}
    if with_thought:
        fields["thought"] = (Thought, ...)
    fields["args"] = (args, ...)
    return create_model(f"Call_{safe}", **fields)


def choice_model(options: list[str]):
    """``{"thought", "tool"}`` where ``tool`` is one of ``options``."""
    return create_model(
        "NextTool", thought=(Thought, ...),
        tool=(Literal[tuple(options)], ...))  # type: ignore[valid-type]


# ---------------------------------------------------------------------------- plans


@dataclass
class Plan:
    """One example under construction."""

    idx: int
    strategy: str  # query_first | chain_first
    mode: str  # single | multi | chain
    selection: str  # guided | free
    target: str | None
    chain: list[str]
    offered: list[ToolSpec]
    env: dict[str, Any]
    env_text: str
    trace: Trace
    max_steps: int
    min_steps: int = 1
    handle_refs: list[dict[str, str]] = field(default_factory=list)  # per planned step: param -> ref
    list_sources: list[dict[str, str]] = field(default_factory=list)  # per planned step: param -> ref of a list
    steps: list[ToolStep] = field(default_factory=list)
    instruction: str = ""
    final_answer: str = ""
    done: bool = False
    failed: str | None = None
    pending_tool: str | None = None
    pending_thought: str = ""
    optional: list[set[str]] = field(default_factory=list)
    model: str = ""

    @property
    def tools(self) -> dict[str, ToolSpec]:
        return {t.name: t for t in self.offered}


class ToolDataGenerator:
    """Builds :class:`~synthrun.records.ToolExample` records with the LLM (see module docstring).

    Args:
        tools: All tools of the spec.
        ctx: The stage context (LLM, prompts, counters).
        engine: Executors used live while writing calls.
        graph: Dependency graph over ``tools``.
        n_distractors: Unneeded tools offered beside the needed ones.
        max_steps: Most calls in one example.
        min_steps: Fewest calls in a multi-step or chain example.
        temperature: Sampling temperature.
        max_tokens: Token budget of one call.
        answer: Write a final answer from the real results.
        spec_name: Name of the spec (provenance).
    """

    def __init__(self, tools: list[ToolSpec], ctx, engine: ExecutionEngine, graph: ToolGraph, *,
                 n_distractors: int = 3, max_steps: int = 4, min_steps: int = 2, temperature: float = 0.7,
                 max_tokens: int = 192, answer: bool = True, spec_name: str = "tools",
                 optional_rate: float = 0.3, prompts: dict[str, str] | None = None, text_retries: int = 2,
                 text_tokens: int = 64, request_from: str = "call"):
        self.tools = {t.name: t for t in tools}
        self.ctx = ctx
        self.engine = engine
        self.graph = graph
        self.n_distractors = n_distractors
        self.max_steps = max_steps
        self.min_steps = min_steps
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.answer = answer
        self.spec_name = spec_name
        self.optional_rate = optional_rate
        self.text_retries = text_retries
        self.text_tokens = text_tokens
        # "call": guided query-first plans get their request after the calls ran, written from the
        # calls and real results (what would a user ask that this answers?); "model": request first.
        self.request_from = request_from
        self.prompts = {"instruction": "tool_instruction", "step": "tool_step", "choose": "tool_choose",
                        "request": "tool_chain_request", "answer": "tool_answer",
                        "request_call": "tool_request_from_call", **(prompts or {})}
        self.types = TypeSystem({k: v for t in tools for k, v in t.types.items()})

    # ------------------------------------------------------------------ planning

    def _offer(self, needed: list[str], rng: random.Random) -> list[ToolSpec]:
        needed = list(dict.fromkeys(needed))
        rest = [n for n in self.tools if n not in needed]
        cats = {self.tools[n].category for n in needed}
        same = [n for n in rest if self.tools[n].category in cats]
        other = [n for n in rest if n not in same]
        rng.shuffle(same)
        rng.shuffle(other)
        k = min(self.n_distractors, len(rest))
        n_same = min(len(same), (k + 1) // 2)
        picked = same[:n_same] + other[: k - n_same]
        picked += [n for n in same[n_same:] if len(picked) < k]
        offered = [self.tools[n] for n in needed + picked]
        rng.shuffle(offered)
        return offered

    def _extend(self, chain: list[str], length: int, rng: random.Random) -> list[str]:
        chain = list(chain)
        while len(chain) < length:
            options = self.graph.valid_next(chain)
            if not options:
                break
            weights = [self.graph.graph.edges[chain[-1], o]["confidence"] for o in options]
            chain.append(rng.choices(options, weights=weights)[0])
        return chain

    def _new_plan(self, idx: int, strategy: str, mode: str, selection: str, target: str | None,
                  chain: list[str], rng: random.Random, max_steps: int) -> Plan:
        offered = self._offer(chain, rng)
        env = self.engine.environment(rng, offered)
        plan = Plan(idx=idx, strategy=strategy, mode=mode, selection=selection, target=target, chain=chain,
                    offered=offered, env=env, env_text=self.engine.describe(env),
                    trace=self.engine.trace(env, offered), max_steps=max_steps,
                    min_steps=1 if mode == "single" else min(self.min_steps, max_steps))
        if selection == "guided":
            check = self.graph.validate_chain(chain)
            for i, name in enumerate(chain):
                tool = self.tools[name]
                refs, lists = {}, {}
                for b in check.bindings[i] if i < len(check.bindings) else []:
                    p = tool.param(b.param)
                    if p is None:
                        continue
                    if self.types.is_handle(p.type) or not b.accessor.startswith("["):
                        refs[b.param] = b.ref
                    else:
                        lists[b.param] = f"$step{b.source + 1}"
                plan.handle_refs.append(refs)
                plan.list_sources.append(lists)
                opt = {p.name for p in tool.parameters
                       if not p.required and p.name not in refs and rng.random() < self.optional_rate}
                plan.optional.append(opt)
        return plan

    def plan_query_first(self, idx: int, mode: str, selection: str, rng: random.Random,
                         target: str | None = None) -> Plan | None:
        """A query-first plan: target tool and the calls it needs (``mode``: single | multi | auto)."""
        names = list(self.tools)
        candidates = [target] if target else rng.sample(names, len(names))
        for name in candidates:
            tool = self.tools[name]
            standalone = self.graph.is_standalone(name)
            if mode == "single":
                if not standalone:
                    continue
                chain = [name]
            else:
                chain = self.graph.prerequisites(name, self.max_steps, rng)
                if not chain:
                    continue
                if mode == "multi":
                    want = rng.randint(max(2, len(chain)), max(2, self.max_steps, len(chain)))
                    chain = self._extend(chain, want, rng)
                    if len(chain) < 2:
                        continue
                elif tool.complexity == "medium" and rng.random() < 0.5:
                    chain = self._extend(chain, min(3, self.max_steps), rng)
                elif tool.complexity == "complex":
                    chain = self._extend(chain, rng.randint(len(chain), max(len(chain), self.max_steps)), rng)
            chain = chain[: self.max_steps]
            actual = "single" if len(chain) == 1 else "multi"
            max_steps = len(chain) if selection == "guided" else (1 if actual == "single" else self.max_steps)
            return self._new_plan(idx, "query_first", actual, selection, name, chain, rng, max_steps)
        return None

    def plan_chain_first(self, idx: int, rng: random.Random, min_steps: int, max_steps: int) -> Plan | None:
        """A chain-first plan: a valid chain sampled from the graph."""
        check = self.graph.sample_chain(rng, min_steps, max_steps)
        if check is None:
            return None
        return self._new_plan(idx, "chain_first", "chain", "guided", check.chain[-1], check.chain, rng,
                              len(check.chain))

    # ------------------------------------------------------------------ LLM loop

    def _params(self, plan: Plan, step_no: int, max_tokens: int | None = None) -> dict[str, Any]:
        return {"max_tokens": max_tokens or self.max_tokens, "temperature": self.temperature,
                "seed": (self.ctx.seed * 1000003 + plan.idx * 7919 + step_no * 31) % (2**31)}

    @staticmethod
    def _outcome(plan: Plan, i: int) -> tuple[Any, bool | None, str | None]:
        o = plan.trace.outcomes[i] if i < len(plan.trace.outcomes) else None
        return (o.result, o.ok, o.error) if o else (None, None, None)

    def _history(self, plan: Plan) -> str:
        lines = []
        for i, (s, o) in enumerate(zip(plan.steps, plan.trace.outcomes, strict=False), 1):
            lines.append(call_line(i, s, o.result, o.ok, o.error))
        return "\n".join(lines) or "(none yet)"

    def _map(self, requests: list[LLMRequest], desc: str):
        if not requests:
            return []
        return self.ctx.llm.map(requests, desc=desc)

    def _fail(self, plan: Plan, reason: str) -> None:
        plan.failed = reason
        plan.done = True
        self.ctx.fail(reason)

    def _ask_text(self, plans: list[Plan], build, schema, field_name: str, accept, desc: str, salt: int,
                  max_tokens: int) -> dict[int, str]:
        """Ask each plan for one sentence-like field; re-ask (new seed) when ``accept`` rejects it.

        Returns plan.idx -> text for the plans that got an acceptable answer; the last reason of
        the others is returned under ``-1 - idx``.
        """
        got: dict[int, str] = {}
        todo = list(plans)
        reason: dict[int, str] = {}
        for attempt in range(self.text_retries + 1):
            if not todo:
                break
            reqs = []
            for plan in todo:
                params = self._params(plan, salt, max_tokens)
                params["seed"] = (params["seed"] + 7777 * attempt) % (2**31)
                reqs.append(LLMRequest(messages=build(plan), schema=schema, params=params, tag=plan))
            retry = []
            for res in self._map(reqs, desc):
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
                else:
                    got[plan.idx] = text
                    plan.model = plan.model or res.model
            todo = retry
        for plan in todo:
            got[-1 - plan.idx] = reason.get(plan.idx, "failed")
        return got

    def _request_ok(self, plan: Plan, text: str) -> str | None:
        if not plausible(text):
            return "implausible"
        low = " ".join(text.lower().split())
        for name in {*(s.tool for s in plan.steps), *plan.chain}:
            if copies_description(low, self.tools[name].description):
                return "copied_tool_description"
        return None

    def _answer_ok(self, plan: Plan, text: str) -> str | None:
        return None if plausible(text, min_words=3, max_words=90, min_letters=0.4) else "implausible"

    def _store(self, plans: list[Plan], got: dict[int, str], attr: str, what: str, fatal: bool) -> None:
        for plan in plans:
            if plan.idx in got:
                setattr(plan, attr, got[plan.idx])
            elif fatal:
                self._fail(plan, f"{what}_{got.get(-1 - plan.idx, 'failed')}")
            else:
                self.ctx.fail(f"{what}_{got.get(-1 - plan.idx, 'failed')}")

    def write_instructions(self, plans: list[Plan]) -> None:
        def build(plan: Plan):
            needed = [self.tools[n] for n in dict.fromkeys(plan.chain)]
            return self.ctx.prompts.render(
                self.prompts["instruction"], target=plan.target, tools_doc="\n".join(tool_line(t) for t in needed),
                environment=plan.env_text, n_steps=len(plan.chain), mode=plan.mode,
                target_doc=tool_line(self.tools[plan.target]) if plan.target else "")

        got = self._ask_text(plans, build, _Request, "request", self._request_ok, "write requests", 0,
                             self.text_tokens)
        self._store(plans, got, "instruction", "instruction", fatal=True)

    def _valid_options(self, plan: Plan) -> list[str]:
        """Offered tools that can run now (their handle inputs have a fitting earlier result)."""
        used = {s.tool for s in plan.steps}
        options = []
        for tool in plan.offered:
            if tool.name in used:
                continue
            ok = True
            for p in tool.parameters:
                if p.required and self.types.is_handle(p.type) and not self._handle_choices(plan, p):
                    ok = False
                    break
            if ok:
                options.append(tool.name)
        return options

    def _handle_choices(self, plan: Plan, param: ParamSpec) -> list[str]:
        return [f"$step{i}" for i, o in enumerate(plan.trace.outcomes, 1)
                if o.ok and self.types.accepts(param.type, o.result_type) > 0]

    def choose_tools(self, plans: list[Plan]) -> None:
        reqs = []
        for plan in plans:
            options = self._valid_options(plan)
            if len(plan.steps) >= plan.min_steps:
                options.append(FINISH)
            if not options or options == [FINISH]:
                plan.done = True
                continue
            messages = self.ctx.prompts.render(
                self.prompts["choose"], instruction=plan.instruction, environment=plan.env_text,
                tools_doc="\n".join(tool_line(t) for t in plan.offered), history=self._history(plan),
                options=", ".join(options), step=len(plan.steps) + 1)
            reqs.append(LLMRequest(messages=messages, schema=choice_model(options),
                                   params=self._params(plan, 100 + len(plan.steps)), tag=plan))
        for res in self._map(reqs, "choose tools"):
            plan = res.request.tag
            if not res.ok:
                self._fail(plan, f"choose_{res.error}")
            elif res.parsed.tool == FINISH:
                plan.done = True
            else:
                plan.pending_tool = res.parsed.tool
                plan.pending_thought = clip(res.parsed.thought.strip(), 300)

    def _want(self, plan: Plan, step_idx: int) -> dict[str, Any] | None:
        nxt = step_idx + 1
        if plan.selection != "guided" or nxt >= len(plan.chain):
            return None
        tool = self.tools[plan.chain[nxt]]
        for pname, ref in {**plan.handle_refs[nxt], **plan.list_sources[nxt]}.items():
            parsed = parse_ref(ref)
            if parsed and parsed[0] == step_idx + 1:
                p = tool.param(pname)
                return {"tool": tool.name, "param": pname, "type": p.type if p else "any"}
        return None

    def write_calls(self, plans: list[Plan]) -> None:
        reqs = []
        for plan in plans:
            i = len(plan.steps)
            if plan.selection == "guided":
                name = plan.chain[i]
                bound = dict(plan.handle_refs[i])
                list_src = plan.list_sources[i]
                wanted_opt = plan.optional[i]
            else:
                name = plan.pending_tool
                bound, list_src, wanted_opt = {}, {}, set()
            tool = plan.tools[name]
            if plan.selection == "free":
                for p in tool.parameters:
                    if self.types.is_handle(p.type) and p.required:
                        choices = self._handle_choices(plan, p)
                        if len(choices) == 1:
                            bound[p.name] = choices[0]
            hints = plan.trace.hints(tool, bound, self._want(plan, i))
            if plan.selection == "free":
                for p in tool.parameters:
                    if self.types.is_handle(p.type) and p.name not in bound:
                        hints[p.name] = self._handle_choices(plan, p)
            for pname, ref in list_src.items():
                try:
                    values = plan.trace.resolve(ref, i + 1)
                except ToolCallError:
                    values = None
                if isinstance(values, list) and values:
                    known = hints.get(pname)
                    hints[pname] = [v for v in values if not known or v in known] or values
            free = [p for p in tool.parameters if p.name not in bound
                    and (p.required or p.name in wanted_opt or (plan.selection == "free" and p.name in hints
                                                                and self.types.is_handle(p.type)))]
            if any(p.required and p.name in hints and not hints[p.name] for p in free):
                self._fail(plan, "no_valid_arguments")
                continue
            with_thought = plan.selection == "guided"
            schema = step_model(tool, free, hints, with_thought=with_thought)
            messages = self.ctx.prompts.render(
                self.prompts["step"], instruction=plan.instruction, environment=plan.env_text, tool_doc=tool_line(tool),
                history=self._history(plan), bound=", ".join(f"{k}={v}" for k, v in bound.items()),
                step=i + 1, n_steps=len(plan.chain) if plan.selection == "guided" else plan.max_steps,
                strategy=plan.strategy, with_thought=with_thought)
            reqs.append(LLMRequest(messages=messages, schema=schema, params=self._params(plan, i + 1),
                                   tag=(plan, tool, bound)))
        for res in self._map(reqs, "write calls"):
            plan, tool, bound = res.request.tag
            if not res.ok:
                self._fail(plan, f"call_{res.error}")
                continue
            written = res.parsed.args.model_dump(by_alias=True)
            args = {p.name: (bound[p.name] if p.name in bound else written[p.name])
                    for p in tool.parameters if p.name in bound or p.name in written}
            thought = clip(res.parsed.thought.strip(), 300) if hasattr(res.parsed, "thought") else plan.pending_thought
            step = ToolStep(step=len(plan.steps) + 1, thought=thought, tool=tool.name, args=args)
            plan.steps.append(step)
            plan.pending_tool = None
            outcome = plan.trace.run(tool.name, args)
            if not outcome.ok:
                plan.done = True  # later calls would build on a failed one; curation decides
            elif len(plan.steps) >= plan.max_steps:
                plan.done = True

    def _request_after_calls(self, plan: Plan) -> bool:
        return plan.strategy == "query_first" and plan.selection == "guided" and self.request_from == "call"

    def write_requests(self, plans: list[Plan]) -> None:
        def build(plan: Plan):
            name = self.prompts["request_call"] if plan.strategy == "query_first" else self.prompts["request"]
            last = len(plan.steps)
            return self.ctx.prompts.render(
                name, environment=plan.env_text, history=self._history(plan), n_steps=last,
                tools_doc="\n".join(tool_line(plan.tools[s.tool]) for s in plan.steps),
                last_call=call_line(last, plan.steps[-1], *self._outcome(plan, last - 1)) if last else "")

        got = self._ask_text(plans, build, _Request, "request", self._request_ok, "write requests", 500,
                             self.text_tokens)
        self._store(plans, got, "instruction", "instruction", fatal=True)

    def write_answers(self, plans: list[Plan]) -> None:
        def build(plan: Plan):
            return self.ctx.prompts.render(self.prompts["answer"], instruction=plan.instruction,
                                           history=self._history(plan))

        got = self._ask_text(plans, build, _Answer, "answer", self._answer_ok, "write answers", 900,
                             self.text_tokens + 32)
        self._store(plans, got, "final_answer", "answer", fatal=False)

    def run(self, plans: list[Plan]) -> list[ToolExample]:
        """Write all plans (batched across plans at every phase) and return the finished examples."""
        try:
            self.write_instructions([p for p in plans if p.strategy == "query_first"
                                     and not self._request_after_calls(p)])
            for _ in range(self.max_steps):
                active = [p for p in plans if not p.done]
                free = [p for p in active if p.selection == "free"]
                self.choose_tools(free)
                ready = [p for p in active if not p.done and (p.selection == "guided" or p.pending_tool)]
                if not ready:
                    break
                self.write_calls(ready)
            for p in plans:
                if not p.failed and not p.steps:
                    self._fail(p, "no_steps")
            self.write_requests([p for p in plans if not p.failed and (
                p.strategy == "chain_first" or self._request_after_calls(p))])
            if self.answer:
                self.write_answers([p for p in plans if not p.failed])
        finally:
            for p in plans:
                p.trace.close()
        return [self.to_example(p) for p in plans if not p.failed]

    def to_example(self, plan: Plan) -> ToolExample:
        used = [self.tools[s.tool] for s in plan.steps]
        needed = set(s.tool for s in plan.steps)
        meta = {
            "mode": plan.mode, "strategy": plan.strategy, "selection": plan.selection,
            "difficulty": difficulty(len(plan.steps), used), "target_tool": plan.target,
            "planned_chain": plan.chain, "n_steps": len(plan.steps),
            "distractors": [t.name for t in plan.offered if t.name not in needed],
            "environment": plan.env, "spec": self.spec_name,
            "live_ok": all(o.ok for o in plan.trace.outcomes),
        }
        return ToolExample(
            id=stable_id(self.ctx.run_id, self.ctx.name, plan.idx, plan.strategy, plan.target, prefix="tool-"),
            instruction=plan.instruction, tools=[t.model_dump(mode="json") for t in plan.offered],
            reasoning_path=plan.steps, final_answer=plan.final_answer, metadata=meta,
            provenance=Provenance(source=self.spec_name, model=plan.model or self.ctx.model_name,
                                  prompt=self.prompts["step"], run_id=self.ctx.run_id, stage=self.ctx.name),
        )


def binding_refs(bindings: list[Binding]) -> dict[str, str]:
    return {b.param: b.ref for b in bindings}
