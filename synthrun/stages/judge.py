"""Probability judge: focused yes/no checks scored from token probabilities, kept in ``rating.total``."""

from __future__ import annotations

import statistics
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from synthrun.context import StageContext
from synthrun.records import CoTExample, QAPair, Rating, Record, as_rated
from synthrun.scoring.logprob_judge import (
    LocalProbe,
    Probe,
    distribution_from_openai,
    read_distribution,
    read_sampled,
)
from synthrun.stages.llm_stage import Drop, LLMStage, collect
from synthrun.textfields import names_topic


class Check(BaseModel):
    """One focused question to the judge.

    Attributes:
        name: Sub-score name (``rating.scores[name]``).
        prompt: Prompt file (variables ``source_text``, ``question``, ``answer``, ``reasoning``).
        kind: ``yes_no`` (score = P(yes)) or ``score`` (G-Eval: expected digit over ``scale``).
        scale: Digits of a ``score`` check.
        weight: Weight in the combined score.
    """

    name: str
    prompt: str
    kind: Literal["yes_no", "score"] = "yes_no"
    scale: tuple[int, int] = (1, 5)
    weight: float = Field(default=1.0, ge=0)


DEFAULT_CHECKS = [
    Check(name="supported", prompt="judge_supported"),
    Check(name="answerable", prompt="judge_answerable"),
]


def combine(scores: dict[str, float | None], checks: list[Check], how: str) -> float | None:
    """The 0-1 combined score of the sub-scores (None when no check could be read)."""
    got = [(c.weight, scores[c.name]) for c in checks if scores.get(c.name) is not None and c.weight > 0]
    if not got or sum(w for w, _ in got) <= 0:
        return None
    if how == "min":
        return min(s for _, s in got)  # type: ignore[type-var]
    if how == "geometric":
        total_w = sum(w for w, _ in got)
        prod = 1.0
        for w, s in got:
            prod *= max(float(s), 1e-6) ** (w / total_w)  # type: ignore[arg-type]
        return prod
    return sum(w * float(s) for w, s in got) / sum(w for w, _ in got)  # type: ignore[arg-type]


class Judge(LLMStage):
    """Rate QA/CoT records from token probabilities of focused checks; keep ``rating.total`` 0-10.

    Each check is one prompt with a one-token answer. On the embedded model (``provider=local``)
    the stage runs ONE forward pass per check and reads the next-token distribution (no decoding);
    on an OpenAI-compatible provider it asks for ``logprobs``/``top_logprobs`` with ``max_tokens: 1``.
    A provider that returns no logprobs falls back to the sampled token (1 for yes, 0 for no):
    ``rating.method`` says which (``logprob``, ``sampled``, or ``gate`` for records a ``filter``
    stage in ``mark`` mode failed, rated 0 without a call).

    ``rating.total`` = 10 x the weighted combination of the sub-scores (``rating.scores``), blended
    with the filter's ``gate_support`` by ``support_weight``. ``clarity`` (from ``answerable``) and
    ``accuracy`` (from ``supported``) are the sub-scores on 0-3; ``usefulness`` and ``difficulty``
    are not judged here and are set from the total (0-2) so validate/compare keep working.

    Attributes:
        checks: The focused checks (default: ``supported`` and ``answerable``).
        combine: ``mean`` (weighted), ``geometric`` or ``min`` of the sub-scores.
        threshold: Keep records with ``rating.total`` >= this; None rates every record and drops none.
        method: ``auto`` (probabilities when the provider gives them), ``logprob`` or ``sampled``.
        support_weight: Share of the final score taken from ``gate_support`` (0-1) when present.
        top_logprobs: How many alternatives to ask an HTTP provider for.
        show_source: Give the judge the source passage from provenance.
        model_path: GGUF file for the embedded model (default: the packaged SmolLM2).
        topic: Also ask whether each pair is about this topic (``topic_prompt``); pairs with
            P(yes) < 0.5 are dropped as ``off_topic`` (a pair that names the topic is on topic).

    The checks name their own prompts and budgets, so the LLM-stage fields ``prompt``, ``max_tokens`` and
    ``temperature`` are not used. Dropped records go to ``dropped.jsonl`` (``below_threshold``,
    ``off_topic``, ``gate``, ``not_rated``); failed requests are counted as ``llm_<error>``.
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record
    desc: ClassVar[str] = "judging"

    checks: list[Check] = Field(default_factory=lambda: [c.model_copy() for c in DEFAULT_CHECKS])
    combine: Literal["mean", "geometric", "min"] = "mean"
    threshold: float | None = Field(default=None, ge=0, le=10)
    method: Literal["auto", "logprob", "sampled"] = "auto"
    support_weight: float = Field(default=0.0, ge=0, le=1)
    top_logprobs: int = Field(default=20, ge=1, le=20)
    show_source: bool = True
    model_path: str | None = None
    topic: str | None = None
    topic_prompt: str = "judge_topic"

    def prompt_names(self) -> list[str]:
        return [c.prompt for c in self._checks()]

    def _checks(self) -> list[Check]:
        """The configured checks, plus the topic check when a topic is set (weight 0: a filter, not a score)."""
        if not self.topic:
            return list(self.checks)
        return [*self.checks, Check(name="on_topic", prompt=self.topic_prompt, weight=0.0)]

    # ------------------------------------------------------------------ LLM-stage shape (issue 9)

    def to_vars(self, record: QAPair | CoTExample) -> dict[str, Any]:
        source = record.provenance.source_text if self.show_source else None
        return {"question": record.question, "answer": record.answer, "source_text": source or "",
                "reasoning": getattr(record, "reasoning", None) or [], "topic": self.topic or ""}

    def from_scores(self, record: QAPair | CoTExample, scores: dict[str, float | None], method: str,
                    model: str) -> Record | Drop:
        """The rated record (or its drop) from the sub-scores of its checks."""
        combined = combine(scores, self.checks, self.combine)
        if combined is None:
            return Drop(record, "not_rated", "no check could be read")
        support = getattr(record, "gate_support", None)
        if self.support_weight and isinstance(support, int | float):
            combined = (1 - self.support_weight) * combined + self.support_weight * float(support)
        total = round(10 * combined, 3)
        rating = Rating(
            clarity=round(3 * (scores.get("answerable") if scores.get("answerable") is not None else combined)),
            accuracy=round(3 * (scores.get("supported") if scores.get("supported") is not None else combined)),
            usefulness=round(2 * combined), difficulty=round(2 * combined), total=total,
            judge_model=model, method=method,
            scores={k: (round(v, 4) if v is not None else None) for k, v in scores.items()},
        )
        on_topic = scores.get("on_topic")
        if self.topic:
            rating.topic_relevant = names_topic(self.topic, record.question, record.answer) or (
                None if on_topic is None else on_topic >= 0.5)
        rated = record.model_copy(update={"rating": rating})
        if self.topic and rating.topic_relevant is False:
            return Drop(rated, "off_topic", f"P(on topic) {on_topic:.2f} < 0.5")
        if self.threshold is not None and total < self.threshold:
            return Drop(rated, "below_threshold", f"rating {total:g} < {self.threshold:g}")
        return rated

    # ------------------------------------------------------------------ running

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        items = [as_rated(r) for r in records]
        todo = [i for i, it in enumerate(items) if not getattr(it, "gate_failed", None)]
        checks = self._checks()
        probes = [Probe(ctx.prompts.render(check.prompt, **self.to_vars(items[i])), check.kind, tuple(check.scale))
                  for i in todo for check in checks]
        model = ctx.model_name
        if model.startswith("local/") and self.method != "sampled":
            values, methods = self._score_local(probes, ctx), ["logprob"] * len(probes)
        else:
            values, methods = self._score_http(probes, ctx)
        per_item: dict[int, tuple[dict[str, float | None], set[str]]] = {}
        for n, i in enumerate(todo):
            base = n * len(checks)
            got = [(c.name, values[base + k], methods[base + k]) for k, c in enumerate(checks)]
            per_item[i] = ({name: v for name, v, _ in got}, {m for _, v, m in got if v is not None})
        out: list[Record] = []
        drops: list[Drop] = []
        used: dict[str, int] = {}
        for i, item in enumerate(items):
            if i in per_item:
                scores, ms = per_item[i]
                method = "+".join(sorted(ms)) or "none"
                collect(self.from_scores(item, scores, method, model), out, drops)
            else:
                method = "gate"
                collect(self._gate_failed(item, model), out, drops)
            used[method] = used.get(method, 0) + 1
        totals = [r.rating.total for r in out if getattr(r, "rating", None) is not None]  # type: ignore[attr-defined]
        ctx.summary.update({"methods": used, "kept": len(out), "dropped": len(drops), "threshold": self.threshold,
                            "mean_total": round(statistics.fmean(totals), 3) if totals else None,
                            "checks": [c.name for c in self.checks]})
        return self.finish(out, drops, ctx)

    def _gate_failed(self, item: QAPair | CoTExample, model: str) -> Record | Drop:
        reason = str(getattr(item, "gate_failed", "gate"))
        rating = Rating(clarity=0, accuracy=0, usefulness=0, difficulty=0, total=0.0, judge_model=model,
                        method="gate", scores={}, reasoning=f"failed gate: {reason}")
        rated = item.model_copy(update={"rating": rating})
        if self.threshold is not None and self.threshold > 0:
            return Drop(rated, "gate", reason)
        return rated

    def _score_local(self, probes: list[Probe], ctx: StageContext) -> list[float | None]:
        probe = LocalProbe(self.model_path)
        passes, tokens = probe.passes, probe.prompt_tokens
        bar = iter(ctx.progress(range(len(probes)), total=len(probes), desc="judging"))

        def tick() -> None:
            next(bar, None)

        values = probe.score(probes, progress=tick)
        for _ in bar:  # finish the progress bar
            pass
        ctx.stats.calls += probe.passes - passes
        ctx.stats.prompt_tokens += probe.prompt_tokens - tokens
        return values

    def _score_http(self, probes: list[Probe], ctx: StageContext) -> tuple[list[float | None], list[str]]:
        params: dict[str, Any] = {"max_tokens": 1, "temperature": 0.0}
        if self.method != "sampled":
            params.update({"logprobs": True, "top_logprobs": self.top_logprobs})
        results = self.ask(ctx, [(p, {}) for p in probes], prompt="", params=params,
                           messages=[p.messages for p in probes], desc="judging")
        values: list[float | None] = []
        methods: list[str] = []
        for res in results:
            probe: Probe = res.request.tag
            if not res.ok:
                ctx.fail(f"llm_{res.error}")
                values.append(None)
                methods.append("none")
                continue
            dist = distribution_from_openai(res.logprobs) if self.method != "sampled" else None
            value = read_distribution(dist, probe.kind, probe.scale) if dist else None
            if value is not None:
                values.append(value)
                methods.append("logprob")
            else:
                values.append(read_sampled(res.text, probe.kind, probe.scale))
                methods.append("sampled")
        return values, methods
