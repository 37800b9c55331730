"""Generate QA pairs from chunks by instruction backtranslation (the chunk is the ground truth)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, model_validator

from synthrun.context import StageContext
from synthrun.io import write_jsonl
from synthrun.llm.types import LLMRequest
from synthrun.records import Chunk, Provenance, QAPair, Record, stable_id
from synthrun.stage import Stage, StageError
from synthrun.textfields import names_topic

DEFAULT_TYPES = ["factual", "analytical", "explanatory", "inferential"]


class QAOut(BaseModel):
    """What the model returns for one pair."""

    question: str = Field(min_length=8, max_length=300)
    answer: str = Field(min_length=1, max_length=800)


class TopicVerdict(BaseModel):
    on_topic: bool
    reason: str = Field(default="", max_length=300)


def allocate(n_chunks: int, n_pairs: int | None, target_pairs: int | None) -> list[int]:
    """How many pairs each chunk gets: ``n_pairs`` each, or ``target_pairs`` spread evenly."""
    if n_chunks == 0:
        return []
    if target_pairs is None:
        return [n_pairs if n_pairs is not None else 1] * n_chunks
    base, extra = divmod(target_pairs, n_chunks)
    if base == 0:  # fewer pairs than chunks: spread them over the whole list
        picked = {int(i * n_chunks / target_pairs) for i in range(target_pairs)}
        return [1 if i in picked else 0 for i in range(n_chunks)]
    return [base + (1 if i < extra else 0) for i in range(n_chunks)]


class GenerateQA(Stage):
    """Write question/answer pairs that each chunk answers.

    Attributes:
        n_pairs: Pairs per chunk (used when ``target_pairs`` is not set; default 1).
        target_pairs: Total pairs for the run, spread across the chunks.
        max_chunks: Use at most this many chunks.
        question_types: Question kinds rotated across pairs for diversity.
        extra_instructions: Text appended to the user prompt.
        prompt: Prompt for prose chunks; ``code_prompt`` is used for code chunks.
        prompt_file: A user prompt file (YAML with ``system``/``user``) replacing ``prompt``.
        topic: When set, an LLM check drops pairs that are not about this topic (reason kept);
            pairs whose question or answer names the topic are kept without a check.
        keep_source_text: Store the chunk text in provenance (else only chunk id and source).
        max_tokens: Token budget of one generation.
    """

    input_type: ClassVar[type[Record]] = Chunk
    output_type: ClassVar[type[Record]] = QAPair

    n_pairs: int | None = Field(default=None, ge=1)
    target_pairs: int | None = Field(default=None, ge=1)
    max_chunks: int | None = Field(default=None, ge=1)
    question_types: list[str] = Field(default_factory=lambda: list(DEFAULT_TYPES), min_length=1)
    extra_instructions: str = ""
    prompt: str = "qa_generate"
    code_prompt: str = "qa_generate_code"
    prompt_file: str | None = None
    topic: str | None = None
    topic_prompt: str = "topic_check"
    keep_source_text: bool = True
    max_tokens: int = Field(default=320, ge=16)

    @model_validator(mode="after")
    def _one_count(self):
        if self.n_pairs is not None and self.target_pairs is not None:
            raise ValueError("set either n_pairs (per chunk) or target_pairs (total), not both")
        return self

    def _prompt_for(self, chunk: Chunk) -> str:
        if self.prompt_file:
            return self.prompt_file
        return self.code_prompt if chunk.kind == "code" else self.prompt

    def run(self, records: list[Chunk], ctx: StageContext) -> list[QAPair]:
        chunks = records[: self.max_chunks] if self.max_chunks else records
        counts = allocate(len(chunks), self.n_pairs, self.target_pairs)
        requests: list[LLMRequest] = []
        for i, (chunk, k) in enumerate(zip(chunks, counts, strict=True)):
            if not chunk.text.strip():
                ctx.fail("empty_chunk")
                continue
            for j in range(k):
                qtype = self.question_types[(i + j) % len(self.question_types)]
                prompt = self._prompt_for(chunk)
                messages = ctx.prompts.render(
                    prompt, text=chunk.text, title=chunk.title or chunk.section, source=chunk.source,
                    language=chunk.language, question_type=qtype, extra_instructions=self.extra_instructions,
                )
                requests.append(LLMRequest(
                    messages=messages, schema=QAOut,
                    params={"max_tokens": self.max_tokens, "seed": ctx.seed * 1009 + j},
                    tag=(chunk, j, qtype, prompt),
                ))
        results = ctx.llm.map(requests, desc="generate QA")
        pairs: list[QAPair] = []
        for res in results:
            chunk, j, qtype, prompt = res.request.tag
            if not res.ok:
                ctx.fail(res.error or "llm_error")
                continue
            out: QAOut = res.parsed  # type: ignore[assignment]
            pairs.append(QAPair(
                id=stable_id(chunk.id, j, qtype, prefix="qa-"),
                question=out.question.strip(), answer=out.answer.strip(), question_type=qtype,
                provenance=Provenance(
                    chunk_id=chunk.id, source=chunk.source, table=chunk.table,
                    source_text=chunk.text if self.keep_source_text else None,
                    model=res.model or ctx.model_name, prompt=str(prompt), run_id=ctx.run_id, stage=ctx.name,
                ),
            ))
        ctx.summary["requested_pairs"] = len(requests)
        ctx.summary["question_types"] = {t: sum(p.question_type == t for p in pairs) for t in self.question_types}
        if self.topic:
            pairs = self._topic_filter(pairs, ctx)
        return pairs

    def _topic_filter(self, pairs: list[QAPair], ctx: StageContext) -> list[QAPair]:
        if not self.topic or not self.topic.strip():
            raise StageError(f"{ctx.name}: `topic` is empty")
        named, unnamed = [], []
        for p in pairs:
            (named if names_topic(self.topic, p.question, p.answer) else unnamed).append(p)
        requests = [
            LLMRequest(
                messages=ctx.prompts.render(self.topic_prompt, topic=self.topic, question=p.question, answer=p.answer),
                schema=TopicVerdict, params={"max_tokens": 120, "temperature": 0.0}, tag=p,
            )
            for p in unnamed
        ]
        ctx.summary["topic_named"] = len(named)  # kept without asking: the pair names the topic
        kept_ids, dropped = {p.id for p in named}, []
        for res in ctx.llm.map(requests, desc=f"topic '{self.topic}'"):
            pair: QAPair = res.request.tag
            if not res.ok:
                ctx.fail(f"topic_check_{res.error}")
                dropped.append({**pair.model_dump(mode="json"), "dropped_reason": f"topic check failed: {res.error}"})
            elif res.parsed.on_topic:  # type: ignore[union-attr]
                kept_ids.add(pair.id)
            else:
                ctx.fail("off_topic")
                dropped.append({**pair.model_dump(mode="json"),
                                "dropped_reason": f"off topic: {res.parsed.reason}"})  # type: ignore[union-attr]
        write_jsonl(ctx.stage_dir / "dropped.jsonl", dropped)
        ctx.summary["off_topic_dropped"] = len(dropped)
        return [p for p in pairs if p.id in kept_ids]  # in generation order
