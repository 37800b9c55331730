"""Plan tool-use examples and build the schemas their calls are written under (pure library).

Two strategies share one loop:

* **query-first** (``tool_generate``): pick a target tool, plan the calls it needs from the
  dependency graph, let the model write the user request, then each call. With
  ``selection="guided"`` the planned tools are called in order; with ``"free"`` the model picks
  each next tool itself from the offered ones that can run at that point.
* **chain-first** (``tool_generate_chain``, ToolGrad): sample a valid chain from the graph, let
  the model fill each call, run it, and only then write the request the chain answers.

The LLM loop that writes the plans is the generate stages' (``stages/tool_writer.py``); this module holds
what it needs and does not talk to a model: the :class:`Plan` of one example, the :class:`Planner`
that makes plans from the dependency graph and works out the next call of a plan, the per-call
answer schemas, and the text checks applied to what the model writes.

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

from synthrun.records import ToolStep
from synthrun.tools.executors.base import ExecutionEngine, ToolCallError, Trace, parse_ref
from synthrun.tools.graph import ToolGraph
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


class RequestOut(BaseModel):
    """The user request the model writes."""

    request: str = Field(pattern=REQUEST_PATTERN)


class AnswerOut(BaseModel):
    """The final answer the model writes."""

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
    seen: set[tuple[str, ...]] = set()
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
    """``value`` as JSON, cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tool_line(tool: ToolSpec) -> str:
    """One-line API documentation of a tool for prompts."""
    params = ", ".join(f"{p.name}{'' if p.required else '?'}: {p.type}" for p in tool.parameters)
    return f"- {tool.name}({params}) -> {tool.returns.type}: {tool.description}"


def call_line(i: int, step: ToolStep, result: Any = None, ok: bool | None = None, error: str | None = None) -> str:
    """One numbered call (with its result or error when known) for prompts and judge views."""
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in step.args.items())
    line = f"{i}. {step.tool}({args})"
    if ok is True:
        line += f" -> {short_json(result)}"
    elif ok is False:
        line += f" -> ERROR {error}"
    return line


def difficulty(n_steps: int, tools: list[ToolSpec]) -> str:
    """``easy`` | ``medium`` | ``hard`` from the number of calls and the tools' complexity."""
    if n_steps >= 4 or (n_steps >= 2 and any(t.complexity == "complex" for t in tools)):
        return "hard"
    if n_steps >= 2 or any(t.complexity != "simple" for t in tools):
        return "medium"
    return "easy"


# ---------------------------------------------------------------------------- schemas


def _field_type(param: ParamSpec, ts: TypeSystem, hints: list[Any] | None) -> Any:
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


def step_model(tool: ToolSpec, params: list[ParamSpec], hints: dict[str, list[Any]],
               with_thought: bool = True) -> type[BaseModel]:
    """``{"thought", "args"}`` for one call of ``tool``."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", tool.name)
    args = args_model(tool, params, hints, f"Args_{safe}")
    fields: dict[str, Any] = {}
    if with_thought:
        fields["thought"] = (Thought, ...)
    fields["args"] = (args, ...)
    return create_model(f"Call_{safe}", **fields)


def choice_model(options: list[str]) -> type[BaseModel]:
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
    repaired: list[str] = field(default_factory=list)  # fields completed without the model (``repair``)

    @property
    def tools(self) -> dict[str, ToolSpec]:
        return {t.name: t for t in self.offered}


@dataclass
class CallSpec:
    """What the model must write for the next call of a plan: tool, bound arguments, hints, free params."""

    tool: ToolSpec
    bound: dict[str, str]
    hints: dict[str, list[Any]]
    free: list[ParamSpec]


class Planner:
    """Makes :class:`Plan` objects from the dependency graph and works out each plan's next call.

    Args:
        tools: All tools of the spec.
        engine: Executors used live while writing (environments, traces, hints).
        graph: Dependency graph over ``tools``.
        n_distractors: Unneeded tools offered beside the needed ones.
        max_steps: Most calls in one example.
        min_steps: Fewest calls in a multi-step or chain example.
        optional_rate: Chance that an optional parameter is filled in.
    """

    def __init__(self, tools: list[ToolSpec], engine: ExecutionEngine, graph: ToolGraph, *,
                 n_distractors: int = 3, max_steps: int = 4, min_steps: int = 2, optional_rate: float = 0.3):
        self.tools = {t.name: t for t in tools}
        self.engine = engine
        self.graph = graph
        self.n_distractors = n_distractors
        self.max_steps = max_steps
        self.min_steps = min_steps
        self.optional_rate = optional_rate
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


    # ------------------------------------------------------------------ the next call of a plan

    def valid_options(self, plan: Plan) -> list[str]:
        """Offered tools that can run now (their handle inputs have a fitting earlier result)."""
        used = {s.tool for s in plan.steps}
        return [tool.name for tool in plan.offered if tool.name not in used and all(
            self.handle_choices(plan, p) for p in tool.parameters if p.required and self.types.is_handle(p.type))]

    def handle_choices(self, plan: Plan, param: ParamSpec) -> list[str]:
        """``$stepN`` references to earlier successful results that fit ``param``."""
        return [f"$step{i}" for i, o in enumerate(plan.trace.outcomes, 1)
                if o.ok and self.types.accepts(param.type, o.result_type) > 0]

    def want(self, plan: Plan, step_idx: int) -> dict[str, Any] | None:
        """What the planned next call needs from this step's result (a hint for the executor)."""
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

    def next_call(self, plan: Plan) -> CallSpec | None:
        """The tool, bound arguments, value hints and free parameters of the plan's next call.

        None when a required argument has hints but none is valid (the plan cannot go on).
        """
        i = len(plan.steps)
        guided = plan.selection == "guided"
        if guided:
            tool = plan.tools[plan.chain[i]]
            bound, list_src, wanted_opt = dict(plan.handle_refs[i]), plan.list_sources[i], plan.optional[i]
        else:
            tool = plan.tools[str(plan.pending_tool)]
            bound, list_src, wanted_opt = self._bind_free(plan, tool), {}, set()
        hints = plan.trace.hints(tool, bound, self.want(plan, i))
        if not guided:
            for p in tool.parameters:
                if self.types.is_handle(p.type) and p.name not in bound:
                    hints[p.name] = self.handle_choices(plan, p)
        self._list_hints(plan, i, list_src, hints)
        free = [p for p in tool.parameters if p.name not in bound
                and (p.required or p.name in wanted_opt or (not guided and p.name in hints
                                                            and self.types.is_handle(p.type)))]
        if any(p.required and p.name in hints and not hints[p.name] for p in free):
            return None
        return CallSpec(tool=tool, bound=bound, hints=hints, free=free)

    def _bind_free(self, plan: Plan, tool: ToolSpec) -> dict[str, str]:
        """Free selection: a required handle with exactly one fitting earlier result is bound to it."""
        bound: dict[str, str] = {}
        for p in tool.parameters:
            if self.types.is_handle(p.type) and p.required:
                choices = self.handle_choices(plan, p)
                if len(choices) == 1:
                    bound[p.name] = choices[0]
        return bound

    @staticmethod
    def _list_hints(plan: Plan, i: int, list_src: dict[str, str], hints: dict[str, list[Any]]) -> None:
        """Arguments fed from an earlier list result: hint the list's items (those the executor knows)."""
        for pname, ref in list_src.items():
            try:
                values = plan.trace.resolve(ref, i + 1)
            except ToolCallError:
                values = None
            if isinstance(values, list) and values:
                known = hints.get(pname)
                hints[pname] = [v for v in values if not known or v in known] or values

    # ------------------------------------------------------------------ checks of written text

    def request_problem(self, plan: Plan, text: str) -> str | None:
        """Why a written request is unusable (degenerate, or a copy of a tool description), or None."""
        if not plausible(text):
            return "implausible"
        low = " ".join(text.lower().split())
        for name in {*(s.tool for s in plan.steps), *plan.chain}:
            if copies_description(low, self.tools[name].description):
                return "copied_tool_description"
        return None

    @staticmethod
    def answer_problem(plan: Plan, text: str) -> str | None:
        """Why a written final answer is unusable, or None."""
        return None if plausible(text, min_words=3, max_words=90, min_letters=0.4) else "implausible"
