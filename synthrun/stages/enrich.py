"""Rewrite QA answers for clarity and structure, keeping their facts (response rewriting)."""

from __future__ import annotations

import difflib
import re
from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr

from synthrun.context import StageContext
from synthrun.llm.types import LLMResult
from synthrun.records import QAPair, Record
from synthrun.stages.llm_stage import LLMStage

_WORD = re.compile(r"[a-z0-9_]+(?:[.'-][a-z0-9_]+)*")
# Words a rewrite may add freely: they carry structure, not facts.
_FUNCTION_WORDS = frozenset(
    "a an the and or but if then so to of in on at by for with from as is are was were be been being it its "
    "this that these those there here which who whom whose what when where why how not no yes also first "
    "second third finally then next can may might will would should could do does did has have had into "
    "than such each both either neither more most less least very just only about over under between "
    "they them their you your we our he she his her one two three i e g ie eg etc".split()
)


class EnrichOut(BaseModel):
    """What the model returns: the rewritten answer and a one-line summary of the edit."""

    answer: str = Field(min_length=1, max_length=3000)
    changes: str = Field(default="", max_length=300)


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text`` (numbers and dotted names like ``h5py.File`` kept whole)."""
    return _WORD.findall(text.lower())


def novel_words(rewrite: str, *allowed_texts: str) -> list[str]:
    """Content words of ``rewrite`` that appear in none of ``allowed_texts`` (candidate added facts)."""
    allowed = set()
    for text in allowed_texts:
        allowed.update(words(text or ""))
    seen: dict[str, None] = {}
    for w in words(rewrite):
        if w not in allowed and w not in _FUNCTION_WORDS and w not in seen:
            seen[w] = None
    return list(seen)


def diff_stats(before: str, after: str) -> dict[str, Any]:
    """Word-level diff of two answers: similarity ratio, words added/removed, lengths."""
    a, b = before.split(), after.split()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    added = removed = 0
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("replace", "delete"):
            removed += i2 - i1
        if op in ("replace", "insert"):
            added += j2 - j1
    return {"similarity": round(matcher.ratio(), 4), "words_added": added, "words_removed": removed,
            "chars_before": len(before), "chars_after": len(after)}


class Enrich(LLMStage):
    """Rewrite each answer for clarity and structure without adding facts.

    Every pair gets an ``enrichment`` object: ``changed`` (bool), ``summary`` (the model's
    note on what it changed), word-level diff stats (``similarity``, ``words_added``,
    ``words_removed``, ``chars_before``, ``chars_after``), ``model``, and when the rewrite was
    not used, ``rejected`` (why: ``llm_error:<code>``, ``added_facts``, ``too_long``). A pair
    whose rewrite fails or is rejected keeps its answer; no pair is dropped. A changed pair
    loses any earlier ``rating`` (it rated the old answer).

    Attributes:
        keep_original: Store the previous answer in ``original_answer`` when it changes.
        show_source: Give the model the source passage from provenance, when present.
        max_novel_ratio: Reject a rewrite when more than this share of its distinct content
            words appear neither in the question, the old answer nor the source passage (a
            cheap guard against invented facts); None disables the check.
        max_growth: Reject a rewrite more than this many times longer than the old answer.
        extra_instructions: Text appended to the user prompt (e.g. "Use Markdown lists.").
        prompt: Prompt name (``prompts/enrich.yaml``) or path of a prompt file.
        max_tokens: Token budget of one rewrite.
    """

    input_type: ClassVar[type[Record]] = QAPair
    output_type: ClassVar[type[Record]] = QAPair

    keep_original: bool = True
    show_source: bool = True
    max_novel_ratio: float | None = Field(default=0.5, ge=0, le=1)
    max_growth: float = Field(default=4.0, gt=0)
    extra_instructions: str = ""
    prompt: str = "enrich"
    max_tokens: int = Field(default=512, ge=16)
    temperature: float = Field(default=0.2, ge=0, le=2)
    answer_schema: ClassVar[type[BaseModel] | None] = EnrichOut
    _model: str = PrivateAttr(default="")

    def to_vars(self, pair: QAPair) -> dict[str, Any]:
        source_text = (pair.provenance.source_text or "") if self.show_source else ""
        return {"question": pair.question, "answer": pair.answer, "source_text": source_text,
                "extra_instructions": self.extra_instructions}

    def from_answer(self, pair: QAPair, answer: EnrichOut, result: LLMResult) -> QAPair:
        new, old = answer.answer.strip(), pair.answer.strip()
        reason = self._reject_reason(pair, new)
        if reason:
            return self._unchanged(pair, reason, summary=answer.changes.strip(), model=result.model)
        changed = new != old
        summary = answer.changes.strip()
        if not changed or summary.lower().rstrip(".") in ("none", "n/a", "no changes"):
            summary = ""
        enrichment = {"changed": changed, "summary": summary, **diff_stats(old, new),
                      "model": result.model or self._model}
        update: dict[str, Any] = {"enrichment": enrichment}
        if changed:
            update.update(answer=new, rating=None)
            if self.keep_original:
                update["original_answer"] = pair.original_answer or pair.answer
        return pair.model_copy(update=update)

    def on_error(self, pair: QAPair, result: LLMResult) -> QAPair:
        return self._unchanged(pair, f"llm_error:{result.error}")

    def run(self, records: list[QAPair], ctx: StageContext) -> list[Record]:
        self._model = ctx.model_name
        out = super().run(records, ctx)
        counts = {"changed": 0, "unchanged": 0, "rejected": 0}
        for pair in out:
            info = pair.enrichment or {}  # type: ignore[attr-defined]
            key = "rejected" if info.get("rejected") else "changed" if info.get("changed") else "unchanged"
            counts[key] += 1
            if info.get("rejected"):
                ctx.fail("enrich_" + str(info["rejected"]).replace("llm_error:", ""))
        ctx.summary.update(counts)
        return out

    def _reject_reason(self, pair: QAPair, new: str) -> str | None:
        old = pair.answer.strip()
        if len(new) > max(self.max_growth * len(old), len(old) + 200):
            return "too_long"
        if self.max_novel_ratio is not None:
            content = [w for w in dict.fromkeys(words(new)) if w not in _FUNCTION_WORDS]
            novel = novel_words(new, pair.question, old, pair.provenance.source_text or "")
            if content and len(novel) / len(content) > self.max_novel_ratio:
                return "added_facts"
        return None

    @staticmethod
    def _unchanged(pair: QAPair, reason: str, summary: str = "", model: str = "") -> QAPair:
        answer = pair.answer.strip()
        enrichment = {"changed": False, "rejected": reason, "summary": summary, **diff_stats(answer, answer)}
        if model:
            enrichment["model"] = model
        return pair.model_copy(update={"enrichment": enrichment})
