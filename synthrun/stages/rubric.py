"""The rubric judge shared by ``curate`` and ``validate``: one request per record, the answer read as a Rating.

The rubric itself (four criteria and their ranges) is :class:`synthrun.records.RubricScores`; this module
holds the answer schema asked of the model and the LLM-stage base both stages build on.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr

from synthrun.context import StageContext
from synthrun.llm.types import LLMResult
from synthrun.records import CoTExample, QAPair, Rating, Record, RubricScores, as_rated
from synthrun.stages.llm_stage import LLMStage
from synthrun.textfields import names_topic


class _Reasoned(BaseModel):
    reasoning: str = Field(default="", max_length=400)


# The docstrings of answer schemas are sent to the model (the schema's description): change them knowingly.
class JudgeOut(RubricScores, _Reasoned):
    """The judge's answer; ``total`` is computed, not asked for."""


class JudgeTopicOut(JudgeOut):
    # no docstring: the schema sent has no description (as before the rubric was shared)
    topic_relevant: bool


class RubricJudge(LLMStage):
    """Rate QA or CoT records on the rubric (clarity 0-3, accuracy 0-3, usefulness 0-2, difficulty 0-2).

    Attributes:
        prompt: Judge prompt name (``prompts/curate.yaml``).
        topic: Also ask whether each record is about this topic (``rating.topic_relevant``; a record
            whose question or answer names the topic is on topic whatever the judge says).
        show_source: Give the judge the source passage from provenance, when present.
        max_tokens: Token budget of one rating.
        temperature: Sampling temperature of the judge.
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record
    desc: ClassVar[str] = "rating"

    prompt: str = "curate"
    topic: str | None = None
    show_source: bool = True
    max_tokens: int = Field(default=200, ge=32)
    temperature: float | None = Field(default=0.0, ge=0, le=2)
    _model: str = PrivateAttr(default="")

    def prepare(self, records: list[Record], ctx: StageContext) -> list[QAPair | CoTExample]:
        self._model = ctx.model_name
        return [as_rated(r) for r in records]

    def schema_for(self, item: Any) -> type[BaseModel]:
        return JudgeTopicOut if self.topic else JudgeOut

    def to_vars(self, item: QAPair | CoTExample) -> dict[str, Any]:
        source_text = item.provenance.source_text if self.show_source else None
        return {"question": item.question, "answer": item.answer, "reasoning": getattr(item, "reasoning", None) or [],
                "source_text": source_text or "", "topic": self.topic or ""}

    def rated(self, item: QAPair | CoTExample, answer: JudgeOut, result: LLMResult) -> QAPair | CoTExample:
        """``item`` with the rating read from the judge's ``answer``."""
        on_topic = True if names_topic(self.topic, item.question, item.answer) else getattr(answer, "topic_relevant",
                                                                                            None)
        rating = Rating(clarity=answer.clarity, accuracy=answer.accuracy, usefulness=answer.usefulness,
                        difficulty=answer.difficulty, total=answer.rubric_total(), reasoning=answer.reasoning.strip(),
                        topic_relevant=on_topic, judge_model=result.model or self._model)
        return item.model_copy(update={"rating": rating})

    def rate(self, items: list[QAPair | CoTExample], ctx: StageContext) -> list[QAPair | CoTExample]:
        """Rate every item, dropping none: an item whose rating failed comes back unrated (counted ``llm_<error>``)."""
        self._model = ctx.model_name
        results = self.ask(ctx, [(item, self.to_vars(item)) for item in items], prompt=self.prompt,
                           schema=[self.schema_for(item) for item in items], params=self.params(None))
        out: list[QAPair | CoTExample] = []
        for res in results:
            if res.ok:
                out.append(self.rated(res.request.tag, res.parsed, res))  # type: ignore[arg-type]
            else:
                ctx.fail(f"llm_{res.error}")
                out.append(res.request.tag)
        return out


def rate_records(stage: RubricJudge, records: list[Record], ctx: StageContext) -> list[QAPair | CoTExample]:
    """Rate every record with ``stage``'s judge (no filtering); failed ratings are left without a rating."""
    return stage.rate([as_rated(r) for r in records], ctx)
