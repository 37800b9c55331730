"""Deterministic quality gates for QA and CoT records, before any LLM judge sees them."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from synthrun.context import StageContext
from synthrun.records import Record, as_rated
from synthrun.scoring.gates import GATES, GateConfig, QAItem, check, overlap, support_score
from synthrun.stage import Stage
from synthrun.stages.llm_stage import Drop, write_dropped


def source_windows(text: str, size: int = 3) -> list[str]:
    """The passage as overlapping windows of ``size`` sentences (what an answer is compared with)."""
    import re

    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", text or "") if s.strip()]
    if len(sentences) <= size:
        return [" ".join(sentences)] if sentences else []
    return [" ".join(sentences[i:i + size]) for i in range(len(sentences) - size + 1)]


def answer_similarities(items: list[QAItem], cfg: GateConfig, ctx: Any, model: str,
                        only_low_overlap: bool = True) -> None:
    """Fill ``item.similarity``: the answer's best cosine to a window of its source (MiniLM).

    With ``only_low_overlap`` only answers whose lexical overlap misses the bar are embedded (the
    similarity can only rescue those), so a run with well-grounded answers never loads the model.
    """
    todo = [it for it in items if it.source_text and (
        not only_low_overlap or overlap(it.answer, it.source_text + "\n" + it.question) < cfg.min_answer_overlap)]
    if not todo:
        return
    from synthrun.embeddings import embed_with_progress, stage_embedder

    # Float vectors: min_answer_similarity and the judge benchmarks were measured on them.
    embedder = stage_embedder(ctx, model, prefer_int8=False)
    windows = [source_windows(it.source_text or "") or [it.source_text or ""] for it in todo]
    texts = [it.answer for it in todo] + [w for ws in windows for w in ws]
    vectors = embed_with_progress(embedder, texts, ctx)
    pos = len(todo)
    for i, it in enumerate(todo):
        n = len(windows[i])
        it.similarity = float((vectors[pos:pos + n] @ vectors[i]).max())
        pos += n


class Filter(Stage):
    """Drop QA/CoT records that fail a deterministic gate; each drop has a named reason.

    Gates (``synthrun/scoring/gates.py``), run in this order, the first failure is the reason:
    ``language``, ``interrogative`` (ends with "?" and opens like a question), ``length``,
    ``vague`` ("What is this?"), ``echo`` (the answer repeats the question), ``meta`` ("this
    passage", "the answer is:", "as an AI"), ``truncated``, ``repetition``, ``question_support``
    (the question's words occur in the source passage) and ``answer_support`` (the answer's words
    occur in the passage, or its MiniLM embedding is close to a passage window; numbers must occur
    there). Dropped records go to ``dropped.jsonl`` (id, stage, reason, detail, record); kept ones
    get ``gate_support`` (0-1), a soft support score a judge can combine with its own.
    With ``mode: mark`` nothing is dropped: failing records are kept with ``gate_failed: REASON``
    (the judge then rates them 0 without a call; used by the judge evaluation recipe).

    Attributes:
        gates: Names of the gates to run (default: all).
        limits: Thresholds of the gates (see :class:`GateConfig`).
        embedding_model: Sentence embedding model of the support gate.
        use_embeddings: Let embedding similarity rescue answers with low lexical overlap.
        mode: ``drop`` failing records, or ``mark`` them with ``gate_failed``.
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record

    gates: list[str] | None = None
    limits: GateConfig = Field(default_factory=GateConfig)
    embedding_model: str = "all-MiniLM-L6-v2"
    use_embeddings: bool = True
    mode: Literal["drop", "mark"] = "drop"

    @field_validator("gates")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        unknown = [g for g in value or [] if g not in GATES]
        if unknown:
            raise ValueError(f"unknown gate(s) {unknown}; choose from {list(GATES)}")
        return value

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        rated = [as_rated(r) for r in records]
        items = [QAItem(r.question, r.answer, r.provenance.source_text) for r in rated]
        if self.use_embeddings and (self.gates is None or "answer_support" in self.gates):
            answer_similarities(items, self.limits, ctx, self.embedding_model)
        kept: list[Record] = []
        drops: list[Drop] = []
        for record, item in zip(rated, items, strict=True):
            ok, reason = check(item, self.limits, self.gates)
            if ok:
                kept.append(record.model_copy(update={"gate_support": round(support_score(item), 4)}))
            elif self.mode == "mark":
                ctx.fail(reason or "gate")
                kept.append(record.model_copy(update={"gate_support": 0.0, "gate_failed": reason or "gate"}))
            else:
                detail = f"similarity {item.similarity:.2f}" if item.similarity is not None else ""
                drops.append(Drop(record, reason or "gate", detail))
        write_dropped(ctx, drops)
        ctx.summary.update({"kept": len(kept), "dropped": len(drops),
                            "gates": self.gates or list(GATES)})
        return kept
