"""Add chain-of-thought reasoning to existing QA pairs; the answer is copied, never regenerated."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr

from synthrun.context import StageContext
from synthrun.llm.types import LLMResult
from synthrun.records import CoTExample, QAPair, Record
from synthrun.stages.reasoning import StepRange, reasoning_schema


class EnhanceCoT(StepRange):
    """Turn each QA pair into a chain-of-thought example with the same question and answer.

    The model only writes the reasoning steps (their count is enforced by the JSON schema);
    the question, answer, id, provenance and any extra fields (``question_type`` ...) are
    copied from the pair, and provenance gains ``cot_model``. A pair's old ``rating`` is
    dropped (it rated the pair without reasoning). Pairs whose reasoning could not be
    generated go to ``dropped.jsonl`` as ``llm_<error>``.

    Attributes:
        min_steps: Fewest reasoning steps accepted.
        max_steps: Most reasoning steps accepted.
        show_source: Give the model the source passage from provenance, when present.
        extra_instructions: Text appended to the user prompt.
        prompt: Prompt name (``prompts/cot_enhance.yaml``) or path of a prompt file.
        max_tokens: Token budget of one request.
        temperature: Sampling temperature.
    """

    input_type: ClassVar[type[Record]] = QAPair
    output_type: ClassVar[type[Record]] = CoTExample
    desc: ClassVar[str] = "add reasoning"

    show_source: bool = True
    extra_instructions: str = ""
    prompt: str = "cot_enhance"
    max_tokens: int = Field(default=384, ge=32)
    temperature: float | None = Field(default=0.3, ge=0, le=2)
    _model: str = PrivateAttr(default="")

    def prepare(self, records: list[QAPair], ctx: StageContext) -> list[QAPair]:
        self._model = ctx.model_name
        return records

    def schema_for(self, pair: QAPair) -> type[BaseModel]:
        return reasoning_schema(self.min_steps, self.max_steps, with_question=False)

    def to_vars(self, pair: QAPair) -> dict[str, Any]:
        source_text = (pair.provenance.source_text or "") if self.show_source else ""
        return {"question": pair.question, "answer": pair.answer, "source_text": source_text,
                "min_steps": self.min_steps, "max_steps": self.max_steps,
                "extra_instructions": self.extra_instructions}

    def from_answer(self, pair: QAPair, answer: Any, result: LLMResult) -> CoTExample:
        data = pair.model_dump(exclude={"rating"})
        data["reasoning"] = list(answer.reasoning)
        data["provenance"]["cot_model"] = result.model or self._model
        return CoTExample.model_validate(data)

    def run(self, records: list[QAPair], ctx: StageContext) -> list[Record]:
        out = super().run(records, ctx)
        steps = [len(e.reasoning) for e in out if isinstance(e, CoTExample)]
        ctx.summary.update({
            "enhanced": len(out), "failed": len(records) - len(out),
            "steps_histogram": {str(n): steps.count(n) for n in sorted(set(steps))},
        })
        return out
