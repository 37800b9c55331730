"""Add chain-of-thought reasoning to existing QA pairs; the answer is copied, never regenerated."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from synthrun.context import StageContext
from synthrun.llm.types import LLMRequest
from synthrun.records import CoTExample, QAPair, Record
from synthrun.stages.cot_generate import StepRange, reasoning_schema


class EnhanceCoT(StepRange):
    """Turn each QA pair into a chain-of-thought example with the same question and answer.

    The model only writes the reasoning steps (their count is enforced by the JSON schema);
    the question, answer, id, provenance and any extra fields (``question_type`` ...) are
    copied from the pair, and provenance gains ``cot_model``. A pair's old ``rating`` is
    dropped (it rated the pair without reasoning). Pairs whose reasoning could not be
    generated are dropped and counted by reason.

    Attributes:
        min_steps: Fewest reasoning steps accepted.
        max_steps: Most reasoning steps accepted.
        show_source: Give the model the source passage from provenance, when present.
        extra_instructions: Text appended to the user prompt.
        prompt: Prompt name (``prompts/cot_enhance.yaml``) or path of a prompt file.
        max_tokens: Token budget of one request.
    """

    input_type: ClassVar[type[Record]] = QAPair
    output_type: ClassVar[type[Record]] = CoTExample

    show_source: bool = True
    extra_instructions: str = ""
    prompt: str = "cot_enhance"
    max_tokens: int = Field(default=384, ge=32)

    def run(self, records: list[QAPair], ctx: StageContext) -> list[CoTExample]:
        schema = reasoning_schema(self.min_steps, self.max_steps, with_question=False)
        requests = []
        for pair in records:
            source_text = (pair.provenance.source_text or "") if self.show_source else ""
            messages = ctx.prompts.render(
                self.prompt, question=pair.question, answer=pair.answer, source_text=source_text,
                min_steps=self.min_steps, max_steps=self.max_steps, extra_instructions=self.extra_instructions,
            )
            requests.append(LLMRequest(messages=messages, schema=schema,
                                       params={"max_tokens": self.max_tokens, "temperature": 0.3}, tag=pair))
        out: list[CoTExample] = []
        for res in ctx.llm.map(requests, desc="add reasoning"):
            pair: QAPair = res.request.tag
            if not res.ok:
                ctx.fail(f"enhance_{res.error}")
                continue
            data = pair.model_dump(exclude={"rating"})
            data["reasoning"] = list(res.parsed.reasoning)  # type: ignore[union-attr]
            data["provenance"]["cot_model"] = res.model or ctx.model_name
            out.append(CoTExample.model_validate(data))
        steps = [len(e.reasoning) for e in out]
        ctx.summary.update({
            "enhanced": len(out), "failed": len(records) - len(out),
            "steps_histogram": {str(n): steps.count(n) for n in sorted(set(steps))},
        })
        return out
