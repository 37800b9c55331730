"""DEITA multi-score selection: complexity, quality and embedding diversity, combined and filtered."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from synthrun.context import StageContext
from synthrun.embeddings import DEFAULT_MODEL, embed_with_progress, stage_embedder
from synthrun.records import Record
from synthrun.scoring import heuristic
from synthrun.scoring.diversity import diversity_scores
from synthrun.stage import StageError
from synthrun.stages.llm_stage import LLMStage
from synthrun.textfields import prompt_text, reasoning_steps, response_text

PARTS = ("complexity", "quality", "diversity")


class MultiScoreJudgement(BaseModel):
    """What the judge answers (prompts/multi_score.yaml)."""

    complexity: int = Field(ge=0, le=10)
    quality: int = Field(ge=0, le=10)


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` (marked ``[...]`` when cut)."""
    return text if len(text) <= max_chars else text[:max_chars] + " [...]"


class MultiScore(LLMStage):
    """Score every record on complexity, quality and diversity (0-10 each) and keep the best.

    Writes ``multi_score = {complexity, quality, diversity, combined, weights, scorer}``
    on each kept record. Complexity and quality come from ``scorer``: ``heuristic``
    (no LLM: length, reasoning steps, vocabulary, structure) or ``llm`` (the shared
    client with prompts/multi_score.yaml; a failed call falls back to the heuristic
    for that record and is counted). Diversity is DEITA's "distance to what is
    already selected": records are ranked by complexity and quality, and each scores
    by the cosine distance of its embedding to every record ranked ahead of it, so
    the lesser of two near-copies scores ~0. ``combined`` is the weighted mean.

    Attributes:
        scorer: ``heuristic`` or ``llm``.
        weights: Weights of complexity, quality and diversity (normalised to sum 1).
        strategy: ``threshold`` (combined >= threshold), ``top_k`` (the top_k best) or
            ``combined`` (threshold, then at most top_k).
        threshold: Minimum combined score for ``threshold`` / ``combined``.
        top_k: Records kept by ``top_k`` / ``combined``.
        prompt_field: Field(s) with the instruction (dotted paths; default: found from the record shape).
        response_field: Field(s) with the response (default: found from the record shape).
        embed_field: Field(s) embedded for diversity (default: the instruction text).
        model: Sentence-transformers model for diversity (default: packaged all-MiniLM-L6-v2).
        cache_dir: Embedding cache folder (default ``${paths.cache_dir}/embeddings``).
        diversity_saturation: Cosine distance at which a record counts as fully novel.
        prompt: Prompt file of the LLM scorer.
        max_chars: Instruction/response length sent to the LLM judge.
        max_tokens: Token budget of one judge answer.
        temperature: Sampling temperature of the LLM scorer.

    A failed LLM score is counted as ``llm_<error>`` and that record falls back to the heuristic.
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    scorer: Literal["heuristic", "llm"] = "heuristic"
    weights: dict[str, float] = Field(default_factory=lambda: {"complexity": 0.4, "quality": 0.4, "diversity": 0.2})
    strategy: Literal["threshold", "top_k", "combined"] = "threshold"
    threshold: float = Field(default=5.0, ge=0, le=10)
    top_k: int | None = Field(default=None, ge=1)
    prompt_field: str | list[str] | None = None
    response_field: str | list[str] | None = None
    embed_field: str | list[str] | None = None
    model: str = DEFAULT_MODEL
    cache_dir: str | None = None
    diversity_saturation: float = Field(default=0.6, gt=0, le=2)
    prompt: str = "multi_score"
    max_chars: int = Field(default=3000, ge=200)
    max_tokens: int = Field(default=48, ge=16)
    temperature: float | None = Field(default=0.0, ge=0, le=2)

    @model_validator(mode="after")
    def _check(self) -> MultiScore:
        unknown = set(self.weights) - set(PARTS)
        if unknown:
            raise ValueError(f"weights: unknown part(s) {sorted(unknown)}; use {list(PARTS)}")
        if any(v < 0 for v in self.weights.values()) or sum(self.weights.get(p, 0) for p in PARTS) <= 0:
            raise ValueError("weights: need non-negative weights with a positive sum")
        if self.strategy in ("top_k", "combined") and self.top_k is None:
            raise ValueError(f"strategy '{self.strategy}' needs top_k")
        return self

    def _weights(self) -> dict[str, float]:
        total = sum(self.weights.get(p, 0.0) for p in PARTS)
        return {p: self.weights.get(p, 0.0) / total for p in PARTS}

    def _base_scores(self, records: list[Record], ctx: StageContext) -> tuple[np.ndarray, np.ndarray, list[str]]:
        pairs = [(prompt_text(r, self.prompt_field), response_text(r, self.response_field)) for r in records]
        steps = [len(reasoning_steps(r)) for r in records]
        comp = np.zeros(len(records))
        qual = np.zeros(len(records))
        source = ["heuristic"] * len(records)
        todo = list(range(len(records)))
        if self.scorer == "llm":
            todo = self._llm_scores(pairs, comp, qual, source, ctx)
        for i in ctx.progress(todo, desc="heuristic scores") if len(todo) > 2000 else todo:
            ins, res = pairs[i]
            comp[i], qual[i] = heuristic.scores(ins, res, steps[i])
        return comp, qual, source

    def params(self, record: Any) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens} if self.temperature is None else \
            {"temperature": self.temperature, "max_tokens": self.max_tokens}

    def _llm_scores(self, pairs: list[tuple[str, str]], comp: np.ndarray, qual: np.ndarray, source: list[str],
                    ctx: StageContext) -> list[int]:
        """Fill ``comp``/``qual``/``source`` from the LLM scorer; return the indices whose call failed."""
        results = self.ask(ctx, [(i, {"instruction": clip(ins, self.max_chars), "response": clip(res, self.max_chars)})
                                 for i, (ins, res) in enumerate(pairs)],
                           prompt=self.prompt, schema=MultiScoreJudgement,
                           params=self.params(None), desc="scoring")
        failed = []
        for res in results:
            i: int = res.request.tag
            answer: Any = res.parsed
            if not res.ok or answer is None:
                ctx.fail(f"llm_{res.error or 'no_answer'}")
                failed.append(i)
                source[i] = "heuristic-fallback"
            else:
                comp[i], qual[i] = float(answer.complexity), float(answer.quality)
                source[i] = f"llm:{res.model or ctx.model_name}"
        return failed

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        if not records:
            return []
        w = self._weights()
        comp, qual, source = self._base_scores(records, ctx)
        base = w["complexity"] * comp + w["quality"] * qual
        if w["diversity"] > 0:
            texts = [prompt_text(r, self.embed_field) or response_text(r) for r in records]
            vectors = embed_with_progress(stage_embedder(ctx, self.model, self.cache_dir), texts, ctx)
            rank = np.empty(len(records), dtype=np.int64)
            rank[np.lexsort((np.arange(len(records)), -base))] = np.arange(len(records))
            div = diversity_scores(vectors, rank, saturation=self.diversity_saturation, seed=ctx.seed)
        else:
            div = np.full(len(records), np.nan)  # not computed: its weight is 0
        combined = np.round(base + (w["diversity"] * div if w["diversity"] > 0 else 0.0), 3)

        keep = np.ones(len(records), dtype=bool)
        if self.strategy in ("threshold", "combined"):
            keep &= combined >= self.threshold
        if self.strategy in ("top_k", "combined"):
            candidates = np.flatnonzero(keep)
            best = candidates[np.lexsort((candidates, -combined[candidates]))][: self.top_k]
            keep[:] = False
            keep[best] = True
        out: list[Record] = []
        weights = {p: self.weights.get(p, 0.0) for p in PARTS}
        for i in np.flatnonzero(keep):
            score: dict[str, Any] = {
                "complexity": round(float(comp[i]), 2), "quality": round(float(qual[i]), 2),
                "diversity": None if np.isnan(div[i]) else round(float(div[i]), 2), "combined": float(combined[i]),
                "weights": weights, "scorer": source[i],
            }
            out.append(records[i].model_copy(update={"multi_score": score}))
        dropped = len(records) - len(out)
        if dropped:
            ctx.fail("below_multi_score" if self.strategy == "threshold" else "not_selected_multi_score", dropped)
        ctx.summary.update({
            "input": len(records), "kept": len(out), "strategy": self.strategy, "scorer": self.scorer,
            "threshold": self.threshold if self.strategy != "top_k" else None, "top_k": self.top_k,
            "mean": {p: None if np.isnan(v).all() else round(float(np.nanmean(v)), 3)
                     for p, v in zip(PARTS, (comp, qual, div), strict=True)},
            "mean_combined_kept": round(float(combined[keep].mean()), 3) if keep.any() else None,
        })
        if self.scorer == "llm" and all(s == "heuristic-fallback" for s in source):
            raise StageError(f"multi_score: every LLM score failed ({ctx.failures}); check the provider")
        return out
