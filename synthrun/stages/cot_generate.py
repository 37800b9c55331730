"""Generate chain-of-thought examples (question, 2-5 reasoning steps, answer) from chunks."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, create_model, model_validator

from synthrun.context import StageContext
from synthrun.llm.types import LLMRequest
from synthrun.records import Chunk, CoTExample, Provenance, Record, stable_id
from synthrun.stage import Stage
from synthrun.stages.qa_generate import allocate

_PLACEHOLDER = re.compile(r"^(?:step\s*\d*|\.+|<[^>]*>|first step|second step|next step|reasoning( step)?)[.:]?$",
                          re.I)


def _real_step(step: str) -> str:
    if _PLACEHOLDER.match(step):
        raise ValueError(f"{step!r} is a placeholder, not a reasoning step; write the step out")
    return step


def _distinct(steps: list[str]) -> list[str]:
    if len({s.casefold() for s in steps}) < len(steps):
        raise ValueError("reasoning steps repeat; each step must say something new")
    return steps


Step = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=400), AfterValidator(_real_step)]
Steps = Annotated[list[Step], AfterValidator(_distinct)]


@lru_cache(maxsize=32)
def reasoning_schema(min_steps: int, max_steps: int, with_question: bool = True) -> type[BaseModel]:
    """The JSON schema asked of the model: ``reasoning`` holds ``min_steps``..``max_steps`` steps.

    With ``with_question`` the model also writes ``question`` and ``answer`` (generation);
    without, only the steps (enhancement of an existing pair). Steps must be distinct and
    not template placeholders ("step 1", "...") that small models copy from the prompt.
    """
    steps = (Steps, Field(min_length=min_steps, max_length=max_steps))
    if not with_question:
        return create_model(f"ReasoningOut{min_steps}to{max_steps}", reasoning=steps)
    return create_model(
        f"CoTOut{min_steps}to{max_steps}",
        question=(str, Field(min_length=8, max_length=400)),
        reasoning=steps,
        answer=(str, Field(min_length=1, max_length=1000)),
    )


class StepRange(Stage):
    """Shared ``min_steps``/``max_steps`` parameters of the chain-of-thought stages."""

    min_steps: int = Field(default=2, ge=1, le=10)
    max_steps: int = Field(default=5, ge=1, le=10)

    @model_validator(mode="after")
    def _step_range(self):
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) must not exceed max_steps ({self.max_steps})")
        return self


class GenerateCoT(StepRange):
    """Write questions that need several reasoning steps, with the steps and the answer.

    Attributes:
        n_examples: Examples per chunk (used when ``target_examples`` is not set; default 1).
        target_examples: Total examples for the run, spread across the chunks.
        max_chunks: Use at most this many chunks.
        min_steps: Fewest reasoning steps accepted (the JSON schema enforces the range).
        max_steps: Most reasoning steps accepted.
        extra_instructions: Text appended to the user prompt.
        prompt: Prompt name (``prompts/cot_generate.yaml``, used for text and code chunks).
        prompt_file: A user prompt file (YAML with ``system``/``user``) replacing ``prompt``.
        keep_source_text: Store the chunk text in provenance (else only chunk id and source).
        max_tokens: Token budget of one generation.
    """

    input_type: ClassVar[type[Record]] = Chunk
    output_type: ClassVar[type[Record]] = CoTExample
    needs_all_records: ClassVar[bool] = True

    n_examples: int | None = Field(default=None, ge=1)
    target_examples: int | None = Field(default=None, ge=1)
    max_chunks: int | None = Field(default=None, ge=1)
    extra_instructions: str = ""
    prompt: str = "cot_generate"
    prompt_file: str | None = None
    keep_source_text: bool = True
    max_tokens: int = Field(default=512, ge=32)

    @model_validator(mode="after")
    def _one_count(self):
        if self.n_examples is not None and self.target_examples is not None:
            raise ValueError("set either n_examples (per chunk) or target_examples (total), not both")
        return self

    def run(self, records: list[Chunk], ctx: StageContext) -> list[CoTExample]:
        chunks = records[: self.max_chunks] if self.max_chunks else records
        counts = allocate(len(chunks), self.n_examples, self.target_examples)
        schema = reasoning_schema(self.min_steps, self.max_steps)
        prompt = self.prompt_file or self.prompt
        requests: list[LLMRequest] = []
        for chunk, k in zip(chunks, counts, strict=True):
            if not chunk.text.strip():
                ctx.fail("empty_chunk")
                continue
            for j in range(k):
                messages = ctx.prompts.render(
                    prompt, text=chunk.text, title=chunk.title or chunk.section, source=chunk.source,
                    kind=chunk.kind, language=chunk.language, min_steps=self.min_steps, max_steps=self.max_steps,
                    index=j + 1, total=k, extra_instructions=self.extra_instructions,
                )
                requests.append(LLMRequest(
                    messages=messages, schema=schema,
                    params={"max_tokens": self.max_tokens, "seed": ctx.seed * 1009 + j}, tag=(chunk, j),
                ))
        examples: list[CoTExample] = []
        for res in ctx.llm.map(requests, desc="generate CoT"):
            chunk, j = res.request.tag
            if not res.ok:
                ctx.fail(res.error or "llm_error")
                continue
            out = res.parsed
            examples.append(CoTExample(
                id=stable_id(chunk.id, j, prefix="cot-"),
                question=out.question.strip(), reasoning=list(out.reasoning), answer=out.answer.strip(),
                provenance=Provenance(
                    chunk_id=chunk.id, source=chunk.source, table=chunk.table,
                    source_text=chunk.text if self.keep_source_text else None,
                    model=res.model or ctx.model_name, prompt=str(prompt), run_id=ctx.run_id, stage=ctx.name,
                ),
            ))
        steps = [len(e.reasoning) for e in examples]
        ctx.summary.update({
            "requested_examples": len(requests),
            "steps_histogram": {str(n): steps.count(n) for n in sorted(set(steps))},
        })
        return examples
