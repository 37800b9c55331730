"""Generate QA pairs from chunks by instruction backtranslation (the chunk is the ground truth)."""

from __future__ import annotations

from typing import Any, ClassVar

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


#: A question while decoding: opens with an interrogative or auxiliary word and ends with "?". No
#: min/maxLength on this field: outlines-core ignores ``pattern`` when a length bound is also set.
QUESTION_PATTERN = (r"^(What|Which|Who|Whom|Whose|When|Where|Why|How|Is|Are|Was|Were|Does|Do|Did|Can|Could|"
                    r"Should|Would|Will|Must|Has|Have|In|For|If|Under|After|Before) [^\"\\\n?]+\?$")


class QAOutForm(BaseModel):
    """Like :class:`QAOut`, with the question form enforced by a ``pattern``."""

    question: str = Field(pattern=QUESTION_PATTERN)
    answer: str = Field(min_length=1, max_length=800)


class QuestionOut(BaseModel):
    """Answer-first generation: only the question is asked for."""

    question: str = Field(pattern=QUESTION_PATTERN)


def answer_spans(text: str, k: int, min_words: int = 6, max_words: int = 45) -> list[str]:
    """Up to ``k`` sentences of ``text`` fit to be answers (prose of a sensible length, no code or headings)."""
    import re

    body = re.sub(r"```.*?```", " ", text, flags=re.S)
    candidates = []
    for para in re.split(r"\n\s*\n", body):
        if para.startswith("    ") or para.lstrip().startswith(("#", "..", ">>>", "$ ")) or re.fullmatch(r"[=\-~^*#\s]+", para.strip()):
            continue
        for sent in re.split(r"(?<=[.!?])\s+", " ".join(para.split())):
            n = len(sent.split())
            if min_words <= n <= max_words and sent.endswith((".", "!")) and not sent.endswith("::"):
                candidates.append(sent)
    if len(candidates) <= k:
        return candidates
    step = len(candidates) / k  # spread the picks over the chunk
    return [candidates[int(i * step)] for i in range(k)]


def near_duplicates(questions: list[str], threshold: float = 0.7) -> dict[int, int]:
    """``{index: index of the earlier question it nearly repeats}`` (Jaccard of content-word stems)."""
    from synthrun.scoring.gates import content_stems

    sets = [set(content_stems(q)) for q in questions]
    out: dict[int, int] = {}
    for i, si in enumerate(sets):
        for j in range(i):
            if j in out or not si or not sets[j]:
                continue
            if len(si & sets[j]) / len(si | sets[j]) >= threshold:
                out[i] = j
                break
    return out


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
        question_form: Enforce the question form while decoding (a ``pattern`` on the question:
            opens with an interrogative or auxiliary word, ends with "?"); the QA recipes turn it on.
        answer_first: Pick sentences of the chunk as answers and ask only for the question each
            answers (``answer_prompt``): easier for small models, and the answer is grounded by construction.
        dedup_threshold: Drop a question whose content words overlap an earlier question of the
            same chunk by at least this Jaccard share (None keeps near-duplicates; the QA recipes use 0.7).
    """

    input_type: ClassVar[type[Record]] = Chunk
    output_type: ClassVar[type[Record]] = QAPair
    needs_all_records: ClassVar[bool] = True

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
    question_form: bool = False
    answer_first: bool = False
    answer_prompt: str = "qa_answer_first"
    dedup_threshold: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _one_count(self):
        if self.n_pairs is not None and self.target_pairs is not None:
            raise ValueError("set either n_pairs (per chunk) or target_pairs (total), not both")
        return self

    def prompt_names(self) -> list[str]:
        names = super().prompt_names()
        return names if self.answer_first else [n for n in names if n != self.answer_prompt]

    def _prompt_for(self, chunk: Chunk) -> str:
        if self.answer_first and chunk.kind != "code":
            return self.answer_prompt
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
            prompt = self._prompt_for(chunk)
            spans = answer_spans(chunk.text, k) if prompt == self.answer_prompt else []
            if prompt == self.answer_prompt and len(spans) < k:
                ctx.fail("no_answer_span", k - len(spans))
            for j in range(len(spans) if prompt == self.answer_prompt else k):
                qtype = self.question_types[(i + j) % len(self.question_types)]
                answer = spans[j] if spans else None
                messages = ctx.prompts.render(
                    prompt, text=chunk.text, title=chunk.title or chunk.section, source=chunk.source,
                    language=chunk.language, question_type=qtype, extra_instructions=self.extra_instructions,
                    **({"answer": answer} if answer is not None else {}),
                )
                schema = QuestionOut if answer is not None else (QAOutForm if self.question_form else QAOut)
                requests.append(LLMRequest(
                    messages=messages, schema=schema,
                    params={"max_tokens": self.max_tokens, "seed": ctx.seed * 1009 + j},
                    tag=(chunk, j, qtype, prompt, answer),
                ))
        results = ctx.llm.map(requests, desc="generate QA")
        pairs: list[QAPair] = []
        for res in results:
            chunk, j, qtype, prompt, answer = res.request.tag
            if not res.ok:
                ctx.fail(res.error or "llm_error")
                continue
            out: Any = res.parsed
            pairs.append(QAPair(
                id=stable_id(chunk.id, j, qtype, prefix="qa-"),
                question=out.question.strip(), answer=(answer if answer is not None else out.answer).strip(),
                question_type=qtype,
                provenance=Provenance(
                    chunk_id=chunk.id, source=chunk.source, table=chunk.table,
                    source_text=chunk.text if self.keep_source_text else None,
                    model=res.model or ctx.model_name, prompt=str(prompt), run_id=ctx.run_id, stage=ctx.name,
                ),
            ))
        ctx.summary["requested_pairs"] = len(requests)
        ctx.summary["question_types"] = {t: sum(p.question_type == t for p in pairs) for t in self.question_types}
        dropped: list[dict[str, Any]] = []
        if self.dedup_threshold is not None:
            pairs = self._drop_near_duplicates(pairs, ctx, dropped)
        if self.topic:
            pairs = self._topic_filter(pairs, ctx, dropped)
        write_jsonl(ctx.stage_dir / "dropped.jsonl", dropped)
        return pairs

    def _drop_near_duplicates(self, pairs: list[QAPair], ctx: StageContext,
                              dropped: list[dict[str, Any]]) -> list[QAPair]:
        by_chunk: dict[str | None, list[QAPair]] = {}
        for p in pairs:
            by_chunk.setdefault(p.provenance.chunk_id, []).append(p)
        gone: set[str] = set()
        for group in by_chunk.values():
            for i, j in near_duplicates([p.question for p in group], self.dedup_threshold or 1.0).items():
                gone.add(group[i].id)
                ctx.fail("near_duplicate")
                dropped.append({**group[i].model_dump(mode="json"),
                                "dropped_reason": f"near duplicate of {group[j].id}: {group[j].question}"})
        ctx.summary["near_duplicates_dropped"] = len(gone)
        return [p for p in pairs if p.id not in gone]

    def _topic_filter(self, pairs: list[QAPair], ctx: StageContext,
                      dropped: list[dict[str, Any]] | None = None) -> list[QAPair]:
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
        kept_ids = {p.id for p in named}
        dropped = dropped if dropped is not None else []
        first = len(dropped)
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
        ctx.summary["off_topic_dropped"] = len(dropped) - first
        return [p for p in pairs if p.id in kept_ids]  # in generation order
