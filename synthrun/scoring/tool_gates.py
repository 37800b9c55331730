"""Deterministic checks for tool-use examples (the tool twin of :mod:`synthrun.scoring.gates`).

Each check looks at one :class:`~synthrun.records.ToolExample` (with its steps' results, when it
was executed) and answers ``True`` (keep) or ``(False, reason)``; the reason lands in the
``tool_filter`` stage's ``dropped.jsonl``. Nothing here calls a model.

* ``schema``: every call is well formed against its tool's JSON Schema (``jsonschema``), also
  after resolving ``$stepN`` references to the values earlier results hold, and every step ran.
* ``grounded``: every literal argument value is mentioned in (or implied by) the request or an
  earlier result (literal or normalised match; the tool's default value is always fine).
* ``answer_uses_results``: the final answer states a value of every result it relies on (a
  result no later call consumes) and no number that neither the results nor the request hold.
* ``specific_request``: the request names an object, file, dataset or quantity.
* ``best_tool``: no offered tool the example never calls fits the request clearly better than the
  tool it chose (MiniLM cosine + word overlap, :mod:`synthrun.scoring.tool_match`); the reason
  starts with ``tool_not_best_match``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, Field

from synthrun.records import ToolExample
from synthrun.tools.executors.base import parse_ref, wire_value
from synthrun.tools.spec import ToolSpec, TypeSystem

GateResult = bool | tuple[bool, str]

_TOKEN = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\d])")
_ENTITY = re.compile(
    r"[\w-]+\.[A-Za-z][\w]{0,5}\b"          # a file name (climate.h5, app.yaml)
    r"|(?:^|\s)/[\w./-]+"                   # a path
    r"|\b\d+(?:\.\d+)?\b"                   # a number, a date
    r"|[\"'`][^\"'`]{2,}[\"'`]"             # quoted text
    r"|\b[\w.+-]+@[\w-]+\.[\w.]+\b"         # an e-mail address
    r"|(?<!^)(?<![.?!] )\b[A-Z][a-zA-Z]{2,}\b"  # a name inside the sentence (Lisbon, Ada)
    r"|\b[A-Z]{2,}\b"                       # a code (JFK)
)
_WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "first": 1, "single": 1, "twice": 2, "both": 2, "dozen": 12, "hundred": 100}
#: Words that name no particular thing: a request made only of these (and stop words) names no task.
GENERIC = frozenset(
    "a an the and or but of to in on at by for with from into about as is are was were be it its this that these "
    "those there here what which who how do does did can could would will please me my i you your we us our some "
    "something anything thing things stuff data file files information info details detail content contents "
    "result results value values item items everything all any help check show tell look find get give see "
    "need want know let find out more inside in there have has do with can done doing use used run make".split()
)
_SKIP_KEYS = frozenset({"handle", "truncated", "reads", "preview", "selection", "kind", "complete", "workers"})


class ToolGateConfig(BaseModel):
    """Knobs of the tool checks (the ``tool_filter`` stage's ``gates`` block)."""

    #: Relative tolerance when a number in the answer is compared with a result (rounding).
    number_tolerance: float = Field(default=0.006, ge=0, le=0.5)
    #: Numbers up to this size in an answer never count as unsupported (counts, "2 blocks").
    small_number: float = Field(default=3, ge=0)
    #: Check that the answer names no number the results do not hold.
    check_answer_numbers: bool = True
    #: Require handle parameters to be fed by a ``$stepN`` reference.
    strict_handles: bool = True
    #: Most result values looked at per step (long arrays are sampled at their start).
    max_values: int = Field(default=200, ge=1)
    #: Let steps that failed to run pass ``schema`` (a later ``tool_curate`` truncates at them and
    #: re-checks what it keeps); their results never count as evidence.
    allow_failed_steps: bool = False
    #: ``best_tool``: embedding model comparing the request with each offered tool (None: lexical only).
    match_model: str | None = "all-MiniLM-L6-v2"
    #: ``best_tool``: weight of the rarity-weighted word overlap beside the cosine.
    match_lexical_weight: float = Field(default=0.03, ge=0)
    #: ``best_tool``: fail when an offered tool the example never calls scores this much above the
    #: chosen one (tuned on half of tests/data/judge/tool_dev.jsonl, see benchmarks/tool_match_tuning.py).
    match_margin: float = 0.04
    #: ``best_tool``: a rival must also fit better on the request's task words (the request without
    #: the file names and paths its calls are given), so sibling tools that only match the object
    #: names do not count (see :func:`synthrun.scoring.tool_match.task_text`).
    match_task_words: bool = True


# ---------------------------------------------------------------------------- text helpers


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def tokens(text: Any) -> list[str]:
    """Lower-case alphanumeric tokens, plural ``s`` stripped (``/run_001/images`` -> run, 001, image)."""
    return [_stem(t) for t in _TOKEN.findall(str(text).lower())]


def _contains(seq: list[str], part: list[str]) -> bool:
    if not part:
        return False
    n = len(part)
    return any(seq[i:i + n] == part for i in range(len(seq) - n + 1))


def numbers(text: str) -> list[float]:
    out = [float(m) for m in _NUMBER.findall(text)]
    out += [float(_WORD_NUMBERS[w]) for w in re.findall(r"[a-z]+", text.lower()) if w in _WORD_NUMBERS]
    return out


def _same_number(a: float, b: float, tol: float) -> bool:
    return a == b or abs(a - b) <= tol * max(abs(b), 1.0) or any(round(b, k) == a for k in range(4))


def scalars(value: Any, limit: int = 200, key: str = "") -> Iterator[tuple[str, Any]]:
    """``(key, scalar)`` for the strings and numbers inside a result (lists also give their length)."""
    count = 0
    stack: list[tuple[str, Any]] = [(key, value)]
    while stack and count < limit:
        k, v = stack.pop(0)
        if k in _SKIP_KEYS or v is None or isinstance(v, bool):
            continue
        if isinstance(v, dict):
            stack.extend((str(kk), vv) for kk, vv in v.items())
        elif isinstance(v, (list, tuple)):
            yield "#len", len(v)
            stack.extend((k, x) for x in v[:limit])
        elif isinstance(v, (int, float, str)):
            count += 1
            yield k, v


# ---------------------------------------------------------------------------- example helpers


def step_results(example: ToolExample) -> list[Any]:
    return [s.result if s.ok is not False else None for s in example.reasoning_path]


def resolve(value: Any, results: list[Any], before: int) -> tuple[bool, Any]:
    """``(True, value)`` with ``$stepN`` references replaced by earlier results, or ``(False, why)``."""
    if isinstance(value, list):
        out = []
        for v in value:
            ok, r = resolve(v, results, before)
            if not ok:
                return False, r
            out.append(r)
        return True, out
    ref = parse_ref(value)
    if ref is None:
        return True, value
    n, accessors = ref
    if not 1 <= n < before or n > len(results) or results[n - 1] is None:
        return False, f"{value} has no result to read"
    current = results[n - 1]
    for acc in accessors:
        try:
            current = current[acc]
        except (KeyError, IndexError, TypeError):
            return False, f"{value}: the result of step {n} has no {acc!r}"
    return True, wire_value(current)


def consumed_steps(example: ToolExample) -> set[int]:
    """Step numbers some later call reads through a ``$stepN`` reference."""
    used: set[int] = set()

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for x in v:
                walk(x)
        else:
            ref = parse_ref(v)
            if ref:
                used.add(ref[0])

    for s in example.reasoning_path:
        for v in s.args.values():
            walk(v)
    return used


def answered_steps(example: ToolExample) -> list[int]:
    """1-based steps whose result the final answer relies on: results no later call consumes."""
    used = consumed_steps(example)
    out = []
    for i, s in enumerate(example.reasoning_path, 1):
        r = s.result
        if i in used or s.ok is False or r is None or isinstance(r, bool):
            continue
        if isinstance(r, dict) and isinstance(r.get("handle"), str):
            continue
        if isinstance(r, str) and parse_ref(r) is None and r.startswith(("sess-", "hdf5://")):
            continue
        out.append(i)
    return out


# ---------------------------------------------------------------------------- checks


def schema(example: ToolExample, tools: list[ToolSpec], cfg: ToolGateConfig) -> GateResult:
    """Calls well formed (checker + JSON Schema of resolved reference values) and every step ran."""
    from synthrun.tools.checker import _schema_errors, check_path

    issues = check_path(example.reasoning_path, tools, cfg.strict_handles)
    if issues:
        i = issues[0]
        return False, f"schema: step {i.step} {i.tool}: {i.code} ({i.message})"
    by_name = {t.name: t for t in tools}
    types: dict = {}
    for t in tools:
        types.update(t.types)
    ts = TypeSystem(types)
    results = step_results(example)
    for i, s in enumerate(example.reasoning_path, 1):
        if s.ok is False:
            if cfg.allow_failed_steps:
                break
            return False, f"schema: step {i} {s.tool} failed ({str(s.error)[:120]})"
        tool = by_name[s.tool]
        for key, value in s.args.items():
            param = tool.param(key)
            if param is None or ts.is_handle(param.type) or not _has_ref(value):
                continue
            ok, resolved = resolve(value, results, i)
            if not ok:
                if s.ok is None and results[:i - 1] == [None] * (i - 1):
                    continue  # not executed yet: nothing to resolve against
                return False, f"schema: step {i} {s.tool}: {resolved}"
            errors = _schema_errors(param, resolved)
            if errors:
                return False, f"schema: step {i} {s.tool}: {errors[0][0]} after resolving {value} ({errors[0][1]})"
    return True


def _has_ref(value: Any) -> bool:
    return parse_ref(value) is not None or (isinstance(value, list) and any(parse_ref(v) for v in value))


def _value_grounded(value: Any, req_tokens: list[str], req_numbers: list[float], seen: list[tuple[str, Any]],
                    cfg: ToolGateConfig) -> bool:
    if isinstance(value, list):
        return all(_value_grounded(v, req_tokens, req_numbers, seen, cfg) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if any(_same_number(n, float(value), cfg.number_tolerance) for n in req_numbers):
            return True
        return any(isinstance(v, (int, float)) and float(v) == float(value) for _, v in seen)
    if isinstance(value, str):
        if any(isinstance(v, str) and v == value for _, v in seen):
            return True
        toks = tokens(value)
        if not toks:
            return True
        if _contains(req_tokens, toks):
            return True
        # a path or identifier: its last part and every part with a digit must be in the request
        parts = [p for p in re.split(r"[/\\]+", value) if p]
        if len(parts) > 1:
            must = [parts[-1]] + [p for p in parts[:-1] if any(ch.isdigit() for ch in p)]
            return all(_contains(req_tokens, tokens(p)) for p in must)
        return False
    return True


def grounded(example: ToolExample, tools: list[ToolSpec], cfg: ToolGateConfig) -> GateResult:
    """Every literal argument value comes from the request or an earlier result (defaults are fine)."""
    req = example.instruction or ""
    req_tokens, req_numbers = tokens(req), numbers(req)
    by_name = {t.name: t for t in tools}
    seen: list[tuple[str, Any]] = []
    for i, s in enumerate(example.reasoning_path, 1):
        tool = by_name.get(s.tool)
        for key, value in s.args.items():
            if value is None or isinstance(value, bool) or _has_ref(value) and not isinstance(value, list):
                continue
            param = tool.param(key) if tool else None
            if param is not None and param.default is not None and value == param.default:
                continue
            literal = [v for v in value if parse_ref(v) is None] if isinstance(value, list) else value
            if not _value_grounded(literal, req_tokens, req_numbers, seen, cfg):
                return False, f"ungrounded: step {i} {s.tool}: {key}={_short(value)} is not in the request or an earlier result"
        if s.ok is not False and s.result is not None:
            seen.extend(scalars(s.result, cfg.max_values))
    return True


def _short(value: Any, limit: int = 60) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mentions(answer_tokens: list[str], answer_numbers: list[float], value: Any, cfg: ToolGateConfig) -> bool:
    if isinstance(value, (int, float)):
        return any(_same_number(a, float(value), cfg.number_tolerance) for a in answer_numbers)
    toks = tokens(value)
    return bool(toks) and len(" ".join(toks)) >= 1 and _contains(answer_tokens, toks)


def answer_uses_results(example: ToolExample, tools: list[ToolSpec], cfg: ToolGateConfig) -> GateResult:
    """The answer states a value of every result it relies on and no number nothing supports."""
    answer = example.final_answer or ""
    if not answer.strip():
        return False, "answer: empty final answer"
    a_tokens, a_numbers = tokens(answer), numbers(answer)
    req_tokens, req_numbers = tokens(example.instruction or ""), numbers(example.instruction or "")
    per_step = {i: [v for k, v in scalars(s.result, cfg.max_values) if k != "#len"]
                for i, s in enumerate(example.reasoning_path, 1) if s.ok is not False}
    for i in answered_steps(example):
        s = example.reasoning_path[i - 1]
        values = per_step[i]
        others = [v for j, vs in per_step.items() if j != i for v in vs]
        # evidence: values only this step returned and the request does not already name
        own = [v for v in values if v not in others and not _mentions(req_tokens, req_numbers, v, cfg)]
        if not any(_mentions(a_tokens, a_numbers, v, cfg) for v in (own or values)):
            return False, f"answer: states nothing step {i} {s.tool} returned"
    if cfg.check_answer_numbers:
        known: list[float] = numbers(example.instruction or "")
        for s in example.reasoning_path:
            known += [float(v) for _, v in scalars(s.result, cfg.max_values * 5) if isinstance(v, (int, float))]
            known += [float(v) for _, v in scalars(s.args) if isinstance(v, (int, float))]
            known += [float(n) for _, v in scalars(s.result, cfg.max_values * 5) if isinstance(v, str)
                      for n in numbers(v)]
        for n in a_numbers:
            if abs(n) <= cfg.small_number:
                continue
            if not any(_same_number(n, k, cfg.number_tolerance) for k in known):
                return False, f"answer: states {n:g}, which no result holds"
    return True


def specific_request(example: ToolExample, tools: list[ToolSpec], cfg: ToolGateConfig) -> GateResult:
    """The request names an object, file, dataset or quantity (not "What can you do with the data?")."""
    req = (example.instruction or "").strip()
    if not req:
        return False, "vague: empty request"
    if _ENTITY.search(req):
        return True
    vocab: set[str] = set()
    for s in example.reasoning_path:
        for _, v in scalars(s.args):
            if isinstance(v, str) and parse_ref(v) is None:
                vocab.update(tokens(v))
        for _, v in scalars(s.result, cfg.max_values):
            if isinstance(v, str):
                vocab.update(tokens(v))
    for t in tools:
        for p in t.parameters:
            vocab.update(tokens(" ".join(str(e) for e in (p.enum or []))))
    named = [w for w in tokens(req) if w not in GENERIC and (w in vocab)]
    if named:
        return True
    return False, "vague: the request names no object, file, dataset or quantity"


def best_tool(example: ToolExample, tools: list[ToolSpec], cfg: ToolGateConfig) -> GateResult:
    """No offered tool the example never calls fits the request clearly better than the chosen one."""
    from synthrun.scoring.tool_match import best_match

    match = best_match(example, tools, cfg.match_model, cfg.match_lexical_weight, cfg.match_task_words)
    if match.margin > cfg.match_margin:
        return False, (f"tool_not_best_match: step {match.step} calls {match.chosen}, but {match.better} fits "
                       f"the request better (margin {match.margin:.3f} > {cfg.match_margin:g})")
    return True


CHECKS: dict[str, Callable[[ToolExample, list[ToolSpec], ToolGateConfig], GateResult]] = {
    "schema": schema,
    "grounded": grounded,
    "answer_uses_results": answer_uses_results,
    "specific_request": specific_request,
    "best_tool": best_tool,
}


def check_all(example: ToolExample, tools: list[ToolSpec], cfg: ToolGateConfig,
              names: list[str] | None = None) -> dict[str, str | None]:
    """Run the named checks (all by default): name -> None when passed, else the reason."""
    out: dict[str, str | None] = {}
    for name in names or list(CHECKS):
        if name not in CHECKS:
            raise ValueError(f"unknown tool check {name!r} (checks: {', '.join(CHECKS)})")
        res = CHECKS[name](example, tools, cfg)
        out[name] = None if res is True else res[1]  # type: ignore[index]
    return out


def checks_score(results: dict[str, str | None]) -> float:
    """0-10: the share of checks passed (what "checks alone" ranks examples by)."""
    return 10.0 * sum(v is None for v in results.values()) / max(len(results), 1)
