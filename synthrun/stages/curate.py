"""LLM-judge rating of QA and chain-of-thought records, with a threshold filter."""

from __future__ import annotations

from pydantic import Field

from synthrun.context import StageContext
from synthrun.llm.types import LLMResult
from synthrun.records import CoTExample, QAPair, Record
from synthrun.stages.llm_stage import Drop, Outcome
from synthrun.stages.rubric import JudgeOut, RubricJudge, rate_records


class Curate(RubricJudge):
    """Rate QA or CoT records with an LLM judge and keep those at or above ``threshold``.

    Ratings: clarity 0-3, accuracy 0-3, usefulness 0-2, difficulty 0-2; ``total`` is their
    sum (0-10). Records come out in the shape they came in, with ``rating`` filled. Records left
    out go to ``dropped.jsonl`` with their reason: ``below_threshold``, ``off_topic`` or
    ``llm_<error>`` (the judge's answer could not be used).

    Attributes:
        threshold: Minimum ``rating.total`` to keep.
        topic: Also ask whether the record is about this topic; off-topic records are dropped
            (a record whose question or answer names the topic is on topic whatever the judge says).
        prompt: Judge prompt name (``prompts/curate.yaml``).
        show_source: Give the judge the source passage from provenance, when present.
        keep_rejected: Kept for old recipes: dropped records always go to ``dropped.jsonl``.
        max_tokens: Token budget of one rating.
    """

    threshold: float = Field(default=7.0, ge=0, le=10)
    keep_rejected: bool = True

    def from_answer(self, item: QAPair | CoTExample, answer: JudgeOut, result: LLMResult) -> Outcome:
        rated = self.rated(item, answer, result)
        assert rated.rating is not None
        if self.topic and rated.rating.topic_relevant is False:
            return Drop(rated, "off_topic", "the judge found it off topic")
        if rated.rating.total < self.threshold:
            return Drop(rated, "below_threshold", f"rating {rated.rating.total:g} < {self.threshold:g}")
        return rated

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        ctx.summary["threshold"] = self.threshold
        return super().run(records, ctx)


__all__ = ["Curate", "rate_records"]  # rate_records: benchmarks/judge_quality.py imports it from here
