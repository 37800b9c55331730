"""Fast, LLM-free complexity and quality scores (0-10) from the text of an example.

The signals are the ones DEITA's scorers learn to reward, measured directly:
how long and constrained the instruction is, how many reasoning steps the answer
takes, how rich its vocabulary is, whether it is structured (paragraphs, lists,
code), whether it addresses the instruction, and whether it is complete rather
than a refusal or a repetition loop.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_LIST_LINE = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•]|step\s*\d+\s*[:.)-]?)\s+\S", re.IGNORECASE | re.MULTILINE)
_HEADING = re.compile(r"^\s*#{1,6}\s+\S", re.MULTILINE)
_CODE = re.compile(r"```|`[^`\n]+`|^\s{4,}\S", re.MULTILINE)
_MATH = re.compile(r"[=<>≤≥±×÷∑∫√^]|\d+\s*[-+*/]\s*\d+")
_SENTENCE_END = re.compile(r"[.!?…](?:\s|$)")
_CONNECTORS = frozenset(
    "first second third then next finally therefore thus hence because since so consequently afterwards "
    "lastly subsequently meanwhile however otherwise".split()
)
_CONSTRAINT_CUES = frozenset(
    "and or if must should without each every all only least most explain why how compare contrast prove "
    "derive calculate compute design implement optimize analyze analyse evaluate justify step steps given "
    "assume while both unless except including format list describe discuss".split()
)
_STOPWORDS = frozenset(
    "the a an and or of to in on for with is are was were be been it this that these those what which who "
    "how why when where do does did can could should would will i you we they he she my your our their as "
    "at by from about into than then there here not no yes please give me tell".split()
)
_REFUSALS = (
    "as an ai", "i cannot", "i can't", "i am unable", "i'm unable", "i'm sorry", "i am sorry",
    "cannot assist", "can't help with", "i do not have access", "i don't have access",
)


def _sat(x: float) -> float:
    return max(0.0, min(1.0, x))


@dataclass(frozen=True)
class TextStats:
    """Surface statistics of one text."""

    words: list[str]
    list_lines: int
    paragraphs: int
    headings: int
    has_code: bool
    has_math: bool
    connectors: int

    @property
    def n_words(self) -> int:
        return len(self.words)

    @property
    def n_unique(self) -> int:
        return len(set(self.words))


def text_stats(text: str) -> TextStats:
    """Measure ``text``."""
    words = [w.lower() for w in _WORD.findall(text)]
    return TextStats(
        words=words,
        list_lines=len(_LIST_LINE.findall(text)),
        paragraphs=len([p for p in re.split(r"\n\s*\n", text) if p.strip()]),
        headings=len(_HEADING.findall(text)),
        has_code=bool(_CODE.search(text)),
        has_math=bool(_MATH.search(text)),
        connectors=sum(1 for w in words if w in _CONNECTORS),
    )


def count_steps(stats: TextStats, explicit_steps: int = 0) -> float:
    """Estimate the reasoning steps of an answer (explicit steps, list lines, connectives)."""
    return explicit_steps + stats.list_lines + 0.5 * stats.connectors + 0.25 * max(0, stats.paragraphs - 1)


def _repetition(words: list[str], n: int = 3) -> float:
    """Fraction of word n-grams that repeat an earlier one (0 = none, ~1 = a loop)."""
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if len(grams) < 4:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def _complexity(instruction: str, ins: TextStats, res: TextStats, explicit_steps: int) -> float:
    length = _sat(math.log1p(ins.n_words) / math.log1p(60))
    cues = sum(1 for w in ins.words if w in _CONSTRAINT_CUES) + instruction.count("?") + instruction.count(",")
    constraints = _sat(cues / 8)
    reasoning = _sat(count_steps(res, explicit_steps) / 6)
    rich = {w for w in ins.words + res.words if len(w) >= 7}
    vocabulary = _sat(len(rich) / 40)
    technical = 0.5 * (ins.has_code or res.has_code) + 0.5 * (ins.has_math or res.has_math)
    score = 0.25 * length + 0.2 * constraints + 0.3 * reasoning + 0.15 * vocabulary + 0.1 * technical
    return round(10 * score, 2)


def _quality(response: str, ins: TextStats, res: TextStats, explicit_steps: int) -> float:
    if not response.strip():
        return 0.0
    length = _sat(math.log1p(res.n_words) / math.log1p(150))
    lexical = _sat(res.n_unique / math.sqrt(max(1, res.n_words)) / 7)  # Guiraud's index
    structure = (0.4 * _sat((res.paragraphs - 1) / 3) + 0.3 * (res.list_lines > 0)
                 + 0.3 * (res.has_code or res.headings > 0))
    reasoning = _sat(count_steps(res, explicit_steps) / 4)
    tail = response.rstrip()
    complete = 1.0 if (_SENTENCE_END.search(tail[-2:] + " ") or tail.endswith(("```", ")", "]", "}", '"'))) else 0.4
    topic = {w for w in ins.words if len(w) >= 4 and w not in _STOPWORDS}
    relevance = _sat(len(topic & set(res.words)) / len(topic) / 0.5) if topic else 0.5
    score = (0.3 * length + 0.15 * lexical + 0.15 * structure + 0.15 * reasoning + 0.1 * complete
             + 0.15 * relevance)
    score *= 1.0 - _repetition(res.words)
    low = response[:300].lower()
    if any(phrase in low for phrase in _REFUSALS):
        score *= 0.3
    return round(10 * score, 2)


def scores(instruction: str, response: str, explicit_steps: int = 0) -> tuple[float, float]:
    """Return ``(complexity, quality)`` of one example, measuring each text once."""
    ins, res = text_stats(instruction), text_stats(response)
    return _complexity(instruction, ins, res, explicit_steps), _quality(response, ins, res, explicit_steps)


def complexity(instruction: str, response: str, explicit_steps: int = 0) -> float:
    """Score how demanding the task is, 0-10 (instruction length and constraints, reasoning
    steps of the answer, rare vocabulary, code or maths)."""
    return _complexity(instruction, text_stats(instruction), text_stats(response), explicit_steps)


def quality(instruction: str, response: str, explicit_steps: int = 0) -> float:
    """Score how good and helpful the answer looks, 0-10 (length, lexical richness, structure,
    reasoning steps, completeness, overlap with the instruction; repetition and refusals cut it)."""
    return _quality(response, text_stats(instruction), text_stats(response), explicit_steps)
