"""LLM-judge rating of QA and chain-of-thought records, with a threshold filter."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from synthrun.context import StageContext
from synthrun.io import write_jsonl
from synthrun.llm.types import LLMRequest
from synthrun.records import CoTExample, QAPair, Rating, Record
from synthrun.stage import Stage, StageError
from synthrun.textfields import names_topic


class JudgeOut(BaseModel):
    """The judge's answer; ``total`` is computed, not asked for."""

    reasoning: str = Field(default="", max_length=400)
    clarity: int = Field(ge=0, le=3)
    accuracy: int = Field(ge=0, le=3)
    usefulness: int = Field(ge=0, le=2)
    difficulty: int = Field(ge=0, le=2)


class JudgeTopicOut(JudgeOut):
    topic_relevant: bool


def as_rated(record: Record) -> QAPair | CoTExample:
    """Read a record as the shape it has: CoT (``reasoning`` steps) or QA."""
    data = record.model_dump()
    if isinstance(data.get("reasoning"), list) and "question" in data and "answer" in data:
        return CoTExample.model_validate(data)
    if "question" in data and "answer" in data:
        return QAPair.model_validate(data)
    raise StageError(f"record {record.id or '?'} is neither a QA pair nor a CoT example "
                     f"(needs question and answer; has {sorted(data)[:8]})")


def rate_records(stage: RateBase, records: list[Record], ctx: StageContext) -> list[QAPair | CoTExample]:
    """Rate every record (no filtering); failed ratings are counted and left without a rating."""
    items = [as_rated(r) for r in records]
    schema = JudgeTopicOut if stage.topic else JudgeOut
    requests = []
    for item in items:
        source_text = item.provenance.source_text if stage.show_source else None
        messages = ctx.prompts.render(
            stage.prompt, question=item.question, answer=item.answer,
            reasoning=getattr(item, "reasoning", None) or [], source_text=source_text or "", topic=stage.topic or "",
        )
        requests.append(LLMRequest(messages=messages, schema=schema,
                                   params={"max_tokens": stage.max_tokens, "temperature": 0.0}, tag=item))
    rated = []
    for res in ctx.llm.map(requests, desc="rating"):
        item = res.request.tag
        if not res.ok:
            ctx.fail(f"rating_{res.error}")
            rated.append(item)
            continue
        out: Any = res.parsed
        rating = Rating(
            clarity=out.clarity, accuracy=out.accuracy, usefulness=out.usefulness, difficulty=out.difficulty,
            total=out.clarity + out.accuracy + out.usefulness + out.difficulty, reasoning=out.reasoning.strip(),
            topic_relevant=True if names_topic(stage.topic, item.question, item.answer) else getattr(
                out, "topic_relevant", None),
            judge_model=res.model or ctx.model_name,
        )
        rated.append(item.model_copy(update={"rating": rating}))
    return rated


class RateBase(Stage):
    prompt: str = "curate"
    topic: str | None = None
    show_source: bool = True
    max_tokens: int = Field(default=200, ge=32)


class Curate(RateBase):
    """Rate QA or CoT records with an LLM judge and keep those at or above ``threshold``.

    Ratings: clarity 0-3, accuracy 0-3, usefulness 0-2, difficulty 0-2; ``total`` is their
    sum (0-10). Records come out in the shape they came in, with ``rating`` filled.

    Attributes:
        threshold: Minimum ``rating.total`` to keep.
        topic: Also ask whether the record is about this topic; off-topic records are dropped
            (a record whose question or answer names the topic is on topic whatever the judge says).
        prompt: Judge prompt name (``prompts/curate.yaml``).
        show_source: Give the judge the source passage from provenance, when present.
        keep_rejected: Write rejected records with their reason to ``rejected.jsonl``.
        max_tokens: Token budget of one rating.
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record

    threshold: float = Field(default=7.0, ge=0, le=10)
    keep_rejected: bool = True

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        kept, rejected = [], []
        for item in rate_records(self, records, ctx):
            if item.rating is None:
                reason = "not rated"
            elif self.topic and item.rating.topic_relevant is False:
                reason = "off topic"
                ctx.fail("off_topic")
            elif item.rating.total < self.threshold:
                reason = f"rating {item.rating.total:g} < {self.threshold:g}"
                ctx.fail("below_threshold")
            else:
                kept.append(item)
                continue
            rejected.append({**item.model_dump(mode="json"), "rejected_reason": reason})
        if self.keep_rejected:
            write_jsonl(ctx.stage_dir / "rejected.jsonl", rejected)
        ctx.summary.update({"threshold": self.threshold, "kept": len(kept), "rejected": len(rejected)})
        return kept
