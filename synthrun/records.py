"""Record types that flow between stages.

Every stage declares the record type it reads and the one it writes. All record
types live here so the contract between stages is visible in one place.
Records allow extra fields: a stage may attach data (``multi_score``,
``cluster_id`` ...) without a new type, and unknown fields survive a round trip
through ``data.jsonl``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthrun.errors import StageError
from synthrun.tools.spec import ToolSpec


def stable_id(*parts: Any, prefix: str = "") -> str:
    """Return a short deterministic id built from ``parts``."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]
    return f"{prefix}{digest}"


class Provenance(BaseModel):
    """Where a record came from and what made it."""

    model_config = ConfigDict(extra="allow")

    chunk_id: str | None = None
    source: str | None = None
    source_text: str | None = None
    model: str | None = None
    prompt: str | None = None
    run_id: str | None = None
    stage: str | None = None


class Record(BaseModel):
    """Base of every record: an id, provenance, and any extra fields."""

    model_config = ConfigDict(extra="allow")

    id: str = ""
    provenance: Provenance = Field(default_factory=Provenance)


class Chunk(Record):
    """A piece of a source document, as stored in LanceDB."""

    text: str
    source: str = ""
    table: str = "text_chunks"
    kind: Literal["text", "code"] = "text"
    title: str = ""
    section: str = ""
    start: int = 0
    end: int = 0
    language: str = ""


class RubricScores(BaseModel):
    """The judge rubric, defined once: four criteria whose maxima add up to 10.

    :class:`Rating` stores them; the judges' answer schemas (``synthrun.stages.rubric.JudgeOut``, the tool
    rating) ask for them by subclassing this model.
    """

    clarity: int = Field(ge=0, le=3)
    accuracy: int = Field(ge=0, le=3)
    usefulness: int = Field(ge=0, le=2)
    difficulty: int = Field(ge=0, le=2)

    def rubric_total(self) -> int:
        """The sum of the four criteria (0-10)."""
        return self.clarity + self.accuracy + self.usefulness + self.difficulty


class Rating(RubricScores):
    """An LLM judge's rating (the four criteria add up to ``total``)."""

    model_config = ConfigDict(extra="allow")

    total: float = Field(ge=0, le=10)
    reasoning: str = ""
    topic_relevant: bool | None = None
    judge_model: str | None = None


class QAPair(Record):
    """A question/answer pair grounded in a chunk."""

    question: str
    answer: str
    question_type: str = ""
    rating: Rating | None = None
    original_answer: str | None = None


class CoTExample(Record):
    """A question with explicit reasoning steps and a final answer."""

    question: str
    reasoning: list[str]
    answer: str
    rating: Rating | None = None


class ToolStep(BaseModel):
    """One step of a tool-use reasoning path and, once executed, its result."""

    model_config = ConfigDict(extra="allow")

    step: int
    thought: str = ""
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    executor: str | None = None
    ok: bool | None = None
    error: str | None = None
    #: ``args`` with ``$stepN`` references replaced by the values really sent (set by execution).
    resolved_args: dict[str, Any] | None = None
    #: True when ``result`` came from the simulated executor, not a real backend.
    simulated: bool = False


class ToolExample(Record):
    """A tool-use example: instruction, offered tools, reasoning path, answer."""

    instruction: str
    tools: list[dict[str, Any]] = Field(default_factory=list)
    reasoning_path: list[ToolStep] = Field(default_factory=list)
    final_answer: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    rating: Rating | None = None


def as_rated(record: Record) -> QAPair | CoTExample:
    """Read a record as the shape it has: CoT (``reasoning`` steps) or QA (what the judges rate)."""
    data = record.model_dump()
    if isinstance(data.get("reasoning"), list) and "question" in data and "answer" in data:
        return CoTExample.model_validate(data)
    if "question" in data and "answer" in data:
        return QAPair.model_validate(data)
    raise StageError(f"record {record.id or '?'} is neither a QA pair nor a CoT example "
                     f"(needs question and answer; has {sorted(data)[:8]})")


class ToolRecord(Record):
    """One tool of a parsed spec (what ``tool_parse`` produces)."""

    tool: ToolSpec
    spec_name: str = ""
    spec_format: str = ""
