"""Deterministic quality gates for QA pairs (datatrove-style filters: each returns True or (False, reason)).

Every gate looks at one pair and answers ``True`` (keep) or ``(False, reason)`` with a short reason
code that lands in the filter stage's ``dropped.jsonl``. Nothing here calls a model: the embedding
similarity the support gate uses is computed in a batch by the caller and passed in.

    >>> interrogative(QAItem("An HDF5 file is a container.", "Yes."), GateConfig())
    (False, 'not_a_question')
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, Field

GateResult = bool | tuple[bool, str]

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|`[^`]+`", re.UNICODE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]*\w)")
#: First words of a question (interrogatives and auxiliaries), lower case.
QUESTION_STARTS = (
    "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was", "were", "do",
    "does", "did", "can", "could", "should", "would", "will", "shall", "may", "might", "must", "has", "have",
    "had", "in", "on", "for", "with", "if", "under", "at", "from", "by", "to", "according", "after", "before",
    "besides", "apart", "given", "when", "between", "instead", "without", "suppose", "assuming", "compared",
)
#: A question may open with a short clause ("In h5py, how ...") as long as it holds one of these.
_WH = re.compile(r"\b(what|which|who|whom|whose|when|where|why|how|is|are|does|do|can|should|must|will)\b", re.I)
STOPWORDS = frozenset(
    "a an the and or but of to in on at by for with from into onto about as is are was were be been being it its "
    "this that these those there here what which who whom whose when where why how do does did done can could "
    "should would will shall may might must has have had not no yes if then than so such very just also only "
    "i you we they he she them us our your their my me one any all some each every more most other own same "
    "s t".split()
)
#: Words that name the text rather than its subject: a question made of these and stopwords is vague.
META_WORDS = frozenset(
    "passage text document section paragraph author article excerpt content this it thing things topic mean "
    "means meaning say says said describe described describes explain explained explains discuss discussed "
    "mention mentioned mentions main point idea important going tell about here above below cover covers "
    "covered work works happen happens summary summarize".split()
)
META_PHRASES = (
    "this passage", "the passage", "this text", "the text says", "this section", "the document says",
    "this document", "the answer is:", "answer:", "as an ai", "as a language model", "i cannot", "i can't",
    "i am unable", "i'm unable", "i'm sorry", "i am sorry", "not mentioned in", "does not say",
    "the author", "according to the passage", "the question is", "you are asking", "you asked",
)
#: Words a finished sentence does not end with.
_DANGLING = frozenset("a an the and or but of to in on at by for with from into as is are was were be this that "
                      "these those which who whose than its their your our".split())
_END_OK = tuple(".!?)]}\"'`*»”’:;") + ("```",)


class GateConfig(BaseModel):
    """Thresholds of the gates (the filter stage's ``gates`` block)."""

    min_question_words: int = Field(default=4, ge=1)
    max_question_words: int = Field(default=60, ge=1)
    min_answer_chars: int = Field(default=2, ge=1)
    max_answer_chars: int = Field(default=2000, ge=1)
    #: Answers up to this many words may end without punctuation ("4", "gzip and lzf").
    short_answer_words: int = Field(default=3, ge=0)
    #: Share of the question's content words the answer may repeat before it counts as an echo.
    max_echo: float = Field(default=0.8, ge=0, le=1)
    #: Share of repeated word 3-grams (or a word said 4 times in a row) that counts as repetition.
    max_repeated_ngrams: float = Field(default=0.3, ge=0, le=1)
    #: Least share of letters in Latin script (a crude "is it English-like text" check).
    min_latin_share: float = Field(default=0.8, ge=0, le=1)
    #: Answer support: kept when the lexical overlap OR the embedding similarity reaches its bar.
    min_answer_overlap: float = Field(default=0.5, ge=0, le=1)
    min_answer_similarity: float = Field(default=0.55, ge=-1, le=1)
    #: Least share of the question's content words found in the source passage.
    min_question_overlap: float = Field(default=0.25, ge=0, le=1)


@dataclass
class QAItem:
    """What the gates look at. ``similarity`` is the answer's embedding similarity to the source."""

    question: str
    answer: str
    source_text: str | None = None
    similarity: float | None = None


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text or "")]


def stem(word: str) -> str:
    """A crude stem: backticks and plural/verb endings off, first 5 letters (matches create/created)."""
    w = word.strip("`").lower()
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            w = w[: -len(suffix)]
            break
    return w[:5]


def content_stems(text: str) -> list[str]:
    out = []
    for w in words(text):
        if w.startswith("`"):
            out.extend(stem(p) for p in re.findall(r"[^\W_]+", w) if p.lower() not in STOPWORDS)
        elif w not in STOPWORDS and (len(w) > 1 or w.isdigit()):
            out.append(stem(w))
    return out


def overlap(part: str, whole: str) -> float:
    """Share of ``part``'s content words (stemmed) that occur in ``whole`` (1.0 when it has none)."""
    mine = content_stems(part)
    if not mine:
        return 1.0
    theirs = set(content_stems(whole))
    return sum(1 for s in mine if s in theirs) / len(mine)


# ---------------------------------------------------------------------------- gates


def interrogative(item: QAItem, cfg: GateConfig) -> GateResult:
    """The question is a question: ends with '?' and opens with an interrogative or auxiliary word."""
    q = item.question.strip()
    if not q.endswith("?"):
        return False, "not_a_question"
    ws = words(q)
    if ws and ws[0] in QUESTION_STARTS:
        return True
    if any(_WH.fullmatch(w) for w in ws[:4] if not w.startswith("`")):
        return True
    head = q.split(",", 1)[0] if "," in q[:60] else ""
    if head and _WH.search(q[len(head):]):
        return True
    return False, "not_a_question"


def length_bounds(item: QAItem, cfg: GateConfig) -> GateResult:
    n = len(words(item.question))
    if n < cfg.min_question_words:
        return False, "question_too_short"
    if n > cfg.max_question_words:
        return False, "question_too_long"
    size = len(item.answer.strip())
    if size < cfg.min_answer_chars:
        return False, "answer_too_short"
    if size > cfg.max_answer_chars:
        return False, "answer_too_long"
    return True


def vague_question(item: QAItem, cfg: GateConfig) -> GateResult:
    """The question names something: at least one word that is neither a stopword nor about the text."""
    specific = [w for w in words(item.question) if w not in STOPWORDS and w not in META_WORDS]
    q = item.question.lower()
    if not specific or any(p in q for p in ("the passage", "this passage", "the text", "this section")):
        return False, "vague_question"
    return True


def echo(item: QAItem, cfg: GateConfig) -> GateResult:
    """The answer does more than repeat the question."""
    q_norm = " ".join(words(item.question))
    if len(q_norm) > 12 and q_norm in " ".join(words(item.answer)):
        return False, "echo"
    a_stems = content_stems(item.answer)
    q_stems = set(content_stems(item.question))
    if not a_stems:
        return True
    new = [s for s in a_stems if s not in q_stems]
    if len(new) / len(a_stems) < 1 - cfg.max_echo and len(q_stems) >= 2:
        return False, "echo"
    return True


def meta_phrases(item: QAItem, cfg: GateConfig) -> GateResult:
    """No talk about the passage, the answer format, or refusals in the answer."""
    a = item.answer.lower()
    for phrase in META_PHRASES:
        if phrase in a:
            return False, "meta_phrase"
    return True


def truncated(item: QAItem, cfg: GateConfig) -> GateResult:
    """A longer answer ends like a finished sentence (or code block)."""
    a = item.answer.rstrip()
    ws = words(a)
    if len(ws) >= 2 and ws[-1] in _DANGLING and not a.endswith(_END_OK):
        return False, "truncated"
    if len(a.split()) <= cfg.short_answer_words or a.endswith(_END_OK):
        return True
    return False, "truncated"


def repetition(item: QAItem, cfg: GateConfig) -> GateResult:
    """No repetition loops (repeated word 3-grams, or one word four times in a row)."""
    ws = [w for w in words(item.answer)]
    for i in range(len(ws) - 3):
        if ws[i] == ws[i + 1] == ws[i + 2] == ws[i + 3]:
            return False, "repetition"
    grams = [tuple(ws[i:i + 3]) for i in range(len(ws) - 2)]
    if len(grams) >= 6 and 1 - len(set(grams)) / len(grams) > cfg.max_repeated_ngrams:
        return False, "repetition"
    return True


def language(item: QAItem, cfg: GateConfig) -> GateResult:
    """Question and answer are mostly Latin-script text (the shipped prompts and judge are English)."""
    letters = [c for c in item.question + item.answer if c.isalpha()]
    if not letters:
        return False, "language"
    latin = sum(1 for c in letters if c.isascii() or "\u00c0" <= c <= "\u024f")
    return True if latin / len(letters) >= cfg.min_latin_share else (False, "language")


def answer_support(item: QAItem, cfg: GateConfig) -> GateResult:
    """The source passage supports the answer: its words occur there, or its meaning is close.

    Numbers in the answer must occur in the passage or the question (a swapped number is a new fact).
    """
    if not item.source_text:
        return True
    context = item.source_text + "\n" + item.question
    source_numbers = set(_NUMBER.findall(context))
    if any(n not in source_numbers for n in _NUMBER.findall(item.answer)):
        return False, "unsupported_number"
    lexical = overlap(item.answer, context)
    if lexical >= cfg.min_answer_overlap:
        return True
    if item.similarity is not None and item.similarity >= cfg.min_answer_similarity:
        return True
    return False, "unsupported_answer"


def question_support(item: QAItem, cfg: GateConfig) -> GateResult:
    """The question is about the passage: enough of its content words occur there."""
    if not item.source_text:
        return True
    if overlap(item.question, item.source_text) < cfg.min_question_overlap:
        return False, "question_off_source"
    return True


Gate = Callable[[QAItem, GateConfig], GateResult]
#: Every gate by name, in the order they run (the first failure is the reason reported).
GATES: dict[str, Gate] = {
    "language": language,
    "interrogative": interrogative,
    "length": length_bounds,
    "vague": vague_question,
    "echo": echo,
    "meta": meta_phrases,
    "truncated": truncated,
    "repetition": repetition,
    "question_support": question_support,
    "answer_support": answer_support,
}


def check(item: QAItem, cfg: GateConfig, names: list[str] | None = None) -> tuple[bool, str | None]:
    """Run the gates ``names`` (default: all) in order; ``(True, None)`` or ``(False, first reason)``."""
    for name in names or list(GATES):
        result = GATES[name](item, cfg)
        if result is not True:
            return False, result[1] if isinstance(result, tuple) else name
    return True, None


def support_score(item: QAItem) -> float:
    """A soft 0-1 support score: the lesser of how much of the answer and of the question the passage holds.

    Low answer overlap flags swapped facts (a new name or option); low question overlap flags a
    question the passage does not address (SQuAD 2.0-style unanswerable questions).
    """
    if not item.source_text:
        return 1.0
    answer = overlap(item.answer, item.source_text + "\n" + item.question)
    question = overlap(item.question, item.source_text)
    return max(0.0, min(1.0, answer, question))
