"""Generate QA pairs from chunks by instruction backtranslation (the chunk is the ground truth)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr, model_validator

from synthrun.context import StageContext
from synthrun.llm.types import LLMResult
from synthrun.records import Chunk, QAPair, Record, stable_id
from synthrun.stage import StageError
from synthrun.stages.generation import allocate, chunk_provenance
from synthrun.stages.llm_stage import Drop, LLMStage, Outcome
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


@dataclass
class PairRequest:
    """One pair to ask for: the chunk, its index in the chunk, its question type, prompt and (answer-first) answer."""

    chunk: Chunk
    index: int
    question_type: str
    prompt: str
    answer: str | None = None


class GenerateQA(LLMStage):
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
        temperature: Sampling temperature (None: the provider's default).

    Pairs left out go to ``dropped.jsonl`` with their reason: ``near_duplicate``, ``off_topic``,
    ``empty_chunk`` or ``llm_<error>`` (a generation or topic check whose answer could not be used).
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
    temperature: float | None = Field(default=None, ge=0, le=2)
    question_form: bool = False
    answer_first: bool = False
    answer_prompt: str = "qa_answer_first"
    dedup_threshold: float | None = Field(default=None, gt=0, le=1)
    _seed: int = PrivateAttr(default=0)
    _model: str = PrivateAttr(default="")
    _where: tuple[str, str] = PrivateAttr(default=("", ""))
    _empty: list[Chunk] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _one_count(self) -> GenerateQA:
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

    def prepare(self, records: list[Chunk], ctx: StageContext) -> list[PairRequest]:
        chunks = records[: self.max_chunks] if self.max_chunks else records
        counts = allocate(len(chunks), self.n_pairs, self.target_pairs)
        self._empty = [c for c in chunks if not c.text.strip()]
        todo: list[PairRequest] = []
        for i, (chunk, k) in enumerate(zip(chunks, counts, strict=True)):
            if not chunk.text.strip():
                continue
            prompt = self._prompt_for(chunk)
            spans = answer_spans(chunk.text, k) if prompt == self.answer_prompt else []
            if prompt == self.answer_prompt and len(spans) < k:
                ctx.fail("no_answer_span", k - len(spans))
            for j in range(len(spans) if prompt == self.answer_prompt else k):
                todo.append(PairRequest(chunk, j, self.question_types[(i + j) % len(self.question_types)], prompt,
                                        spans[j] if spans else None))
        self._model = ctx.model_name
        self._where = (ctx.run_id, ctx.name)
        ctx.summary["requested_pairs"] = len(todo)
        return todo

    def prompt_for(self, item: PairRequest) -> str:
        return item.prompt

    def schema_for(self, item: PairRequest) -> type[BaseModel]:
        return QuestionOut if item.answer is not None else (QAOutForm if self.question_form else QAOut)

    def to_vars(self, item: PairRequest) -> dict[str, Any]:
        chunk = item.chunk
        return {"text": chunk.text, "title": chunk.title or chunk.section, "source": chunk.source,
                "language": chunk.language, "question_type": item.question_type,
                "extra_instructions": self.extra_instructions,
                **({"answer": item.answer} if item.answer is not None else {})}

    def params(self, item: PairRequest | None) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": self.max_tokens, "seed": self._seed * 1009 + (item.index if item else 0)}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        return params

    def from_answer(self, item: PairRequest, answer: Any, result: LLMResult) -> Outcome:
        run_id, stage = self._where
        return QAPair(
            id=stable_id(item.chunk.id, item.index, item.question_type, prefix="qa-"),
            question=answer.question.strip(),
            answer=(item.answer if item.answer is not None else answer.answer).strip(),
            question_type=item.question_type,
            provenance=chunk_provenance(item.chunk, keep_source_text=self.keep_source_text,
                                        model=result.model or self._model, prompt=str(item.prompt), run_id=run_id,
                                        stage=stage),
        )

    def on_error(self, item: PairRequest, result: LLMResult) -> Outcome:
        return Drop(item.chunk, f"llm_{result.error}", f"pair {item.index} ({item.question_type}) of chunk "
                                                        f"{item.chunk.id}: the answer could not be used")

    def run(self, records: list[Chunk], ctx: StageContext) -> list[Record]:
        self._seed = ctx.seed
        out, drops = self.run_loop(records, ctx)
        drops += [Drop(c, "empty_chunk", "the chunk has no text") for c in self._empty]
        pairs = [p for p in out if isinstance(p, QAPair)]
        ctx.summary["question_types"] = {t: sum(p.question_type == t for p in pairs) for t in self.question_types}
        if self.dedup_threshold is not None:
            pairs = self._drop_near_duplicates(pairs, ctx, drops)
        if self.topic:
            pairs = self._topic_filter(pairs, ctx, drops)
        return self.finish(list(pairs), drops, ctx)

    def _drop_near_duplicates(self, pairs: list[QAPair], ctx: StageContext, drops: list[Drop]) -> list[QAPair]:
        by_chunk: dict[str | None, list[QAPair]] = {}
        for p in pairs:
            by_chunk.setdefault(p.provenance.chunk_id, []).append(p)
        gone: set[str] = set()
        for group in by_chunk.values():
            for i, j in near_duplicates([p.question for p in group], self.dedup_threshold or 1.0).items():
                gone.add(group[i].id)
                drops.append(Drop(group[i], "near_duplicate", f"near duplicate of {group[j].id}: {group[j].question}"))
        ctx.summary["near_duplicates_dropped"] = len(gone)
        return [p for p in pairs if p.id not in gone]

    def _topic_filter(self, pairs: list[QAPair], ctx: StageContext, drops: list[Drop]) -> list[QAPair]:
        if not self.topic or not self.topic.strip():
            raise StageError(f"{ctx.name}: `topic` is empty")
        named: list[QAPair] = []
        unnamed: list[QAPair] = []
        for p in pairs:
            (named if names_topic(self.topic, p.question, p.answer) else unnamed).append(p)
        ctx.summary["topic_named"] = len(named)  # kept without asking: the pair names the topic
        kept_ids = {p.id for p in named}
        first = len(drops)
        results = self.ask(ctx, [(p, {"topic": self.topic, "question": p.question, "answer": p.answer})
                                 for p in unnamed], prompt=self.topic_prompt, schema=TopicVerdict,
                           params={"max_tokens": 120, "temperature": 0.0}, desc=f"topic '{self.topic}'")
        for res in results:
            pair: QAPair = res.request.tag
            verdict: Any = res.parsed
            if not res.ok:
                drops.append(Drop(pair, f"llm_{res.error}", f"topic check failed: {res.error}"))
            elif verdict.on_topic:
                kept_ids.add(pair.id)
            else:
                drops.append(Drop(pair, "off_topic", f"off topic: {verdict.reason}"))
        ctx.summary["off_topic_dropped"] = len(drops) - first
        return [p for p in pairs if p.id in kept_ids]  # in generation order
