"""Generate chain-of-thought examples (question, 2-5 reasoning steps, answer) from chunks."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr, model_validator

from synthrun.context import StageContext
from synthrun.llm.types import LLMResult
from synthrun.records import Chunk, CoTExample, Record, stable_id
from synthrun.stages.generation import allocate, chunk_provenance
from synthrun.stages.llm_stage import Drop, Outcome
from synthrun.stages.reasoning import StepRange, reasoning_schema


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
        temperature: Sampling temperature (None: the provider's default).

    Chunks without text and examples whose answer could not be used go to ``dropped.jsonl``
    (``empty_chunk``, ``llm_<error>``).
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
    temperature: float | None = Field(default=None, ge=0, le=2)
    _seed: int = PrivateAttr(default=0)
    _model: str = PrivateAttr(default="")
    _where: tuple[str, str] = PrivateAttr(default=("", ""))
    _empty: list[Chunk] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _one_count(self) -> GenerateCoT:
        if self.n_examples is not None and self.target_examples is not None:
            raise ValueError("set either n_examples (per chunk) or target_examples (total), not both")
        return self

    def prepare(self, records: list[Chunk], ctx: StageContext) -> list[tuple[Chunk, int, int]]:
        chunks = records[: self.max_chunks] if self.max_chunks else records
        counts = allocate(len(chunks), self.n_examples, self.target_examples)
        self._seed, self._model, self._where = ctx.seed, ctx.model_name, (ctx.run_id, ctx.name)
        self._empty = [c for c in chunks if not c.text.strip()]
        todo = [(chunk, j, k) for chunk, k in zip(chunks, counts, strict=True) if chunk.text.strip() for j in range(k)]
        ctx.summary["requested_examples"] = len(todo)
        return todo

    def prompt_for(self, item: tuple[Chunk, int, int]) -> str:
        return self.prompt_file or self.prompt

    def schema_for(self, item: tuple[Chunk, int, int]) -> type[BaseModel]:
        return reasoning_schema(self.min_steps, self.max_steps)

    def to_vars(self, item: tuple[Chunk, int, int]) -> dict[str, Any]:
        chunk, j, k = item
        return {"text": chunk.text, "title": chunk.title or chunk.section, "source": chunk.source, "kind": chunk.kind,
                "language": chunk.language, "min_steps": self.min_steps, "max_steps": self.max_steps, "index": j + 1,
                "total": k, "extra_instructions": self.extra_instructions}

    def params(self, item: tuple[Chunk, int, int] | None) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": self.max_tokens, "seed": self._seed * 1009 + (item[1] if item else 0)}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        return params

    def from_answer(self, item: tuple[Chunk, int, int], answer: Any, result: LLMResult) -> Outcome:
        chunk, j, _ = item
        run_id, stage = self._where
        return CoTExample(
            id=stable_id(chunk.id, j, prefix="cot-"),
            question=answer.question.strip(), reasoning=list(answer.reasoning), answer=answer.answer.strip(),
            provenance=chunk_provenance(chunk, keep_source_text=self.keep_source_text,
                                        model=result.model or self._model, prompt=str(self.prompt_for(item)),
                                        run_id=run_id, stage=stage),
        )

    def on_error(self, item: tuple[Chunk, int, int], result: LLMResult) -> Outcome:
        return Drop(item[0], f"llm_{result.error}", f"example {item[1]} of chunk {item[0].id}: the answer could "
                                                    "not be used")

    def run(self, records: list[Chunk], ctx: StageContext) -> list[Record]:
        out, drops = self.run_loop(records, ctx)
        drops += [Drop(c, "empty_chunk", "the chunk has no text") for c in self._empty]
        steps = [len(e.reasoning) for e in out if isinstance(e, CoTExample)]
        ctx.summary["steps_histogram"] = {str(n): steps.count(n) for n in sorted(set(steps))}
        return self.finish(out, drops, ctx)
