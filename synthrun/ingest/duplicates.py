"""Cross-file duplicate chunks at ingest: the same text stored once, whatever format carried it.

Sphinx docs ship the same page as rendered HTML, as ``_sources/*.rst.txt`` and inside the PDF
manual. Each format cuts chunks at different places, so comparing chunk pairs misses most of
the overlap. Instead every kept chunk adds its word 5-grams (on the text normalised as the
dedup stage does: lower case, no punctuation, collapsed spaces) to an index, and a new chunk is

* an **exact** duplicate when its normalised text equals a kept chunk's, or
* a **near** duplicate when at least ``threshold`` of its 5-grams already occur in the
  kept chunks of *other* files (containment, so a chunk that is part of a longer page counts).

Files are offered in format order (reST/Markdown sources before HTML before PDF), so the
source that is easiest to read is the copy that stays.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from synthrun.minhash import normalize

#: Which copy of a document wins: lower first.
FORMAT_ORDER = {"rst": 0, "markdown": 1, "text": 2, "code": 3, "html": 4, "pdf": 5}
NGRAM = 5


def shingles(text: str, n: int = NGRAM) -> set[int]:
    """64-bit hashes of the word ``n``-grams of the normalised ``text`` (one for a shorter text)."""
    words = normalize(text).split()
    grams = [" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))]
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams}


@dataclass
class DuplicateIndex:
    """What has been kept so far; :meth:`check` tells whether a new chunk repeats it."""

    threshold: float = 0.8
    exact: dict[str, str] = field(default_factory=dict)  # normalised text -> owner
    owners: dict[int, str] = field(default_factory=dict)  # shingle -> first owner

    def add(self, text: str, owner: str) -> None:
        self.exact.setdefault(normalize(text), owner)
        for s in shingles(text):
            self.owners.setdefault(s, owner)

    def check(self, text: str, owner: str) -> tuple[str, str] | None:
        """``("exact"|"near", owner of the original)`` when ``text`` repeats kept text, else None."""
        key = normalize(text)
        if not key:
            return None
        if key in self.exact:
            return "exact", self.exact[key]
        grams = shingles(text)
        if len(grams) < 3:
            return None
        others = Counter(o for o in (self.owners.get(s) for s in grams) if o is not None and o != owner)
        if others and sum(others.values()) >= self.threshold * len(grams):
            return "near", others.most_common(1)[0][0]
        return None
