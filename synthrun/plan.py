"""``synthrun plan +recipe=... [overrides]``: each stage's expected calls, tokens and cost, before any call.

How a plan is made:

* Source stages that need no LLM (``load``) run for real in a temporary folder: the counts and
  texts the plan starts from are the run's own.
* Stages the plan knows (QA generation, enrich, the judge) render their real prompts with the real
  prompt files for every request they would send; prompt tokens are the rendered size / 4
  characters (the estimate the budget uses too). Expected completion tokens come from the shape of
  the answer (a question and a passage sentence for QA generation, the answer again for enrich,
  one token for the probability judge), capped by ``max_tokens``; the upper bound is ``max_tokens``.
* Counts after an LLM stage depend on its yield: the plan assumes every request succeeds and every
  record passes the filters and the judge (the configured per-record fan-out, e.g. ``n_pairs``), so
  those rows are marked *estimate*. Stages the plan does not know that render prompts are *unknown*:
  one call per record and prompt, completion up to ``max_tokens``.
* With ``target_rows`` the span of rounds is *unbounded* (it repeats until N rows pass or the budget
  ends): the plan shows the first round (``target_rows`` inputs).

Prices come from :mod:`synthrun.llm.pricing` (``provider.price_in``/``price_out`` win).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthrun.budget import Spend, estimate_tokens, message_tokens, parse_budget
from synthrun.prompts import PromptLibrary

#: Characters of a typical generated question (the plan's guess; a real question is 40-100).
QUESTION_CHARS = 60
#: Characters of a typical "what I changed" note of an enrich answer.
CHANGES_CHARS = 60


@dataclass
class StagePlan:
    """The plan of one stage."""

    name: str
    stage: str
    rows_in: int = 0
    rows_out: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    completion_max: int = 0
    cost_usd: float = 0.0
    cost_max_usd: float = 0.0
    #: exact (counts known), estimate (depends on an earlier stage's yield), unknown or unbounded.
    basis: str = "exact"
    note: str = ""


@dataclass
class Plan:
    recipe: str
    stages: list[StagePlan] = field(default_factory=list)
    budget_note: str = ""

    def totals(self) -> StagePlan:
        t = StagePlan(name="total", stage="")
        for s in self.stages:
            t.calls += s.calls
            t.prompt_tokens += s.prompt_tokens
            t.completion_tokens += s.completion_tokens
            t.completion_max += s.completion_max
            t.cost_usd += s.cost_usd
            t.cost_max_usd += s.cost_max_usd
        bases = {s.basis for s in self.stages}
        t.basis = next((b for b in ("unbounded", "unknown", "estimate") if b in bases), "exact")
        return t

    def to_json(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "stages": [asdict(s) for s in self.stages],
                "total": asdict(self.totals()), "budget": self.budget_note}


@dataclass
class Call:
    """One request the stage would send: prompt tokens, expected and maximum completion tokens."""

    prompt: int
    expected: int
    maximum: int


def _add_calls(sp: StagePlan, calls: list[Call], prices: tuple[float, float]) -> None:
    p_in, p_out = prices
    sp.calls += len(calls)
    sp.prompt_tokens += sum(c.prompt for c in calls)
    sp.completion_tokens += sum(c.expected for c in calls)
    sp.completion_max += sum(c.maximum for c in calls)
    sp.cost_usd += sum(c.prompt * p_in + c.expected * p_out for c in calls)
    sp.cost_max_usd += sum(c.prompt * p_in + c.maximum * p_out for c in calls)


def _typical_sentence(text: str) -> str:
    from synthrun.stages.qa_generate import answer_spans

    spans = answer_spans(text, 50)
    if not spans:
        return " ".join(text.split())[:200]
    mean = sum(len(s) for s in spans) / len(spans)
    return min(spans, key=lambda s: abs(len(s) - mean))


def _get(rec: Any, key: str, default: Any = "") -> Any:
    if isinstance(rec, dict):
        return rec.get(key, default)
    value = getattr(rec, key, default)
    return default if value is None else value


def _source_text(rec: Any) -> str:
    if isinstance(rec, dict):
        return str(rec.get("source_text") or "")
    prov = getattr(rec, "provenance", None)
    return str(getattr(prov, "source_text", "") or "")


# ---------------------------------------------------------------------------------- known stages


def _plan_generate(stage: Any, records: list[Any], prompts: PromptLibrary) -> tuple[list[Call], list[Any], str]:
    from synthrun.stages.qa_generate import allocate, answer_spans

    chunks = records[: stage.max_chunks] if stage.max_chunks else records
    counts = allocate(len(chunks), stage.n_pairs, stage.target_pairs)
    calls: list[Call] = []
    out: list[Any] = []
    for i, (chunk, k) in enumerate(zip(chunks, counts, strict=True)):
        text = str(_get(chunk, "text"))
        if not text.strip():
            continue
        prompt = stage._prompt_for(chunk)
        first = prompt == stage.answer_prompt
        spans = answer_spans(text, k) if first else []
        answer = _typical_sentence(text)
        for j in range(len(spans) if first else k):
            qtype = stage.question_types[(i + j) % len(stage.question_types)]
            extra = {"answer": spans[j]} if first else {}
            messages = prompts.render(prompt, text=text, title=_get(chunk, "title") or _get(chunk, "section"),
                                      source=_get(chunk, "source"), language=_get(chunk, "language"),
                                      question_type=qtype, extra_instructions=stage.extra_instructions, **extra)
            question = "Q" * QUESTION_CHARS
            reply = {"question": question} if first else {"question": question, "answer": answer}
            expected = min(stage.max_tokens, estimate_tokens(json.dumps(reply)))
            calls.append(Call(message_tokens(messages), expected, stage.max_tokens))
            out.append({"id": f"{_get(chunk, 'id')}-{j}", "question": question,
                        "answer": spans[j] if first else answer, "source_text": text})
    note = f"{len(out)} pairs from {len(chunks)} chunks if every answer parses"
    if stage.topic:
        calls += [Call(c.prompt // 2, 30, 120) for c in calls]
        note += "; topic checks counted for every pair"
    return calls, out, note


def _plan_enrich(stage: Any, records: list[Any], prompts: PromptLibrary) -> tuple[list[Call], list[Any], str]:
    calls = []
    for rec in records:
        source = _source_text(rec) if stage.show_source else ""
        messages = prompts.render(stage.prompt, question=_get(rec, "question"), answer=_get(rec, "answer"),
                                  source_text=source, extra_instructions=stage.extra_instructions)
        reply = {"answer": _get(rec, "answer"), "changes": "c" * CHANGES_CHARS}
        calls.append(Call(message_tokens(messages), min(stage.max_tokens, estimate_tokens(json.dumps(reply))),
                          stage.max_tokens))
    return calls, list(records), "one rewrite per pair"


def _plan_judge(stage: Any, records: list[Any], prompts: PromptLibrary) -> tuple[list[Call], list[Any], str]:
    calls = []
    for rec in records:
        variables = {"question": _get(rec, "question"), "answer": _get(rec, "answer"),
                     "source_text": _source_text(rec) if stage.show_source else "",
                     "reasoning": _get(rec, "reasoning", []) or [], "topic": stage.topic or ""}
        for check in stage._checks():
            calls.append(Call(message_tokens(prompts.render(check.prompt, **variables)), 1, 1))
    kept = "every record kept" if stage.threshold is None else "assumes every record passes the threshold"
    return calls, list(records), f"{len(stage._checks())} one-token checks per record; {kept}"


Estimator = Callable[[Any, list[Any], PromptLibrary], tuple[list[Call], list[Any], str]]
ESTIMATORS: dict[str, Estimator] = {"GenerateQA": _plan_generate, "Enrich": _plan_enrich, "Judge": _plan_judge}


def _plan_unknown(stage: Any, records: list[Any], prompts: PromptLibrary,
                  provider: dict[str, Any]) -> tuple[list[Call], list[Any], str]:
    names = stage.prompt_names()
    max_tokens = int(getattr(stage, "max_tokens", None) or provider.get("max_tokens") or 512)
    calls = []
    for name in names:
        try:
            template = message_tokens(prompts.render(name))
        except Exception:  # noqa: BLE001 - a prompt that needs variables: count its file's text
            template = estimate_tokens(prompts.path(name).read_text(encoding="utf-8"))
        for rec in records:
            body = estimate_tokens(str(_get(rec, "text")) + str(_get(rec, "question")) + str(_get(rec, "answer")))
            calls.append(Call(template + body, max_tokens // 2, max_tokens))
    return calls, list(records), f"assumed one call per record and prompt ({', '.join(names)})"


# ---------------------------------------------------------------------------------- the plan


def _run_source(name: str, stage: Any, cfg: Any, prompts: PromptLibrary) -> list[Any]:
    from synthrun.context import StageContext

    with tempfile.TemporaryDirectory(prefix="synthrun-plan-") as tmp:
        ctx = StageContext(name=name, run_id=f"plan/{name}", run_dir=Path(tmp), stage_dir=Path(tmp),
                           prompts=prompts, seed=int(cfg.get("seed", 0)), show_progress=False)
        return list(stage.run([], ctx))


def _plan_stage(name: str, stage: Any, records: list[Any], cfg: Any, prompts: PromptLibrary,
                upstream_llm: bool) -> tuple[StagePlan, list[Any], bool]:
    from synthrun.llm.pricing import token_prices
    from synthrun.runner import _provider_for

    sp = StagePlan(name=name, stage=type(stage).__name__, rows_in=len(records))
    if not stage.enabled:
        sp.rows_out, sp.note = len(records), "disabled: passes records through"
        return sp, records, upstream_llm
    if stage.source and not stage.prompt_names():
        out = _run_source(name, stage, cfg, prompts)
        sp.rows_out, sp.note = len(out), "read for real (no LLM)"
        return sp, out, False
    provider = _provider_for(cfg, stage)
    estimator = ESTIMATORS.get(type(stage).__name__)
    if estimator is None and not stage.prompt_names():
        sp.rows_out = len(records)
        sp.note = "no LLM; assumes every record passes"
        sp.basis = "estimate" if upstream_llm else "exact"
        return sp, records, upstream_llm
    try:
        calls, out, note = estimator(stage, records, prompts) if estimator else (None, [], "")
    except Exception:  # noqa: BLE001 - a stage whose shape changed: fall back to the generic guess
        calls = None
    if calls is None:
        calls, out, note = _plan_unknown(stage, records, prompts, provider)
        sp.basis = "unknown"
    else:
        sp.basis = "estimate" if upstream_llm else "exact"
    _add_calls(sp, calls, token_prices(provider))
    sp.rows_out, sp.note = len(out), note
    return sp, out, True


def _budget_note(cfg: Any, plan: Plan) -> str:
    caps = parse_budget(cfg).run
    if not caps.any():
        return "no budget caps set (budget.max_usd / max_tokens / max_calls)"
    spent = Spend()
    for s in plan.stages:
        step = Spend(s.calls, s.prompt_tokens + s.completion_max, s.cost_max_usd)
        total = Spend(spent.calls, spent.tokens, spent.usd)
        total.add(step)
        cap = caps.passed(total)
        if cap:
            return f"budget.{cap} would stop the run in stage '{s.name}' (at its upper bound)"
        spent = total
    return "the plan fits the budget caps (counting every completion at max_tokens)"


def make_plan(cfg: Any) -> Plan:
    """Plan a composed recipe ``cfg`` (nothing sent; source stages without an LLM are read)."""
    from synthrun.rounds import parse_rounds
    from synthrun.runner import build_stages, stage_names

    stages = build_stages(cfg)
    spec = parse_rounds(cfg, stage_names(cfg))
    prompts = PromptLibrary([Path(p) for p in cfg.get("prompt_dirs") or []])
    plan = Plan(recipe=str(cfg.get("recipe_name")))
    records: list[Any] = []
    upstream_llm = False
    in_span = False
    for name, stage in stages:
        if spec is not None and name == spec.first:
            in_span = True
            records = records[: spec.target]
        sp, records, upstream_llm = _plan_stage(name, stage, records, cfg, prompts, upstream_llm)
        if in_span:
            sp.basis = "unbounded"
            sp.note += f"; rounds until target_rows={spec.target} pass (max {spec.max_rounds}): first round shown"
        if spec is not None and name == spec.last:
            in_span = False
        plan.stages.append(sp)
    plan.budget_note = _budget_note(cfg, plan)
    return plan


def render_plan(plan: Plan) -> str:
    """The plan as a text table."""
    head = (f"{'stage':<12} {'rows in':>7} {'rows out':>8} {'calls':>7} {'prompt tok':>11} "
            f"{'compl tok (exp/max)':>21} {'cost USD (exp/max)':>21}  basis: note")
    lines = [f"plan for recipe '{plan.recipe}' (before any call; tokens = characters / 4)", head]
    for s in [*plan.stages, plan.totals()]:
        rows = "" if s.name == "total" else f"{s.rows_in:>7} {s.rows_out:>8}"
        lines.append(f"{s.name:<12} {rows:>16} {s.calls:>7} {s.prompt_tokens:>11,} "
                     f"{f'{s.completion_tokens:,}/{s.completion_max:,}':>21} "
                     f"{f'{s.cost_usd:.4f}/{s.cost_max_usd:.4f}':>21}  {s.basis}" + (f": {s.note}" if s.note else ""))
    lines.append(f"budget: {plan.budget_note}")
    return "\n".join(lines)
