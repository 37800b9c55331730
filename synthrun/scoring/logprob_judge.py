"""Judge scores read from token probabilities instead of sampled integers.

A focused check ("Does the passage support this answer? yes or no") is asked once; the score is
the model's next-token distribution, not the token it happens to sample:

- yes/no checks: ``P(yes) = p(yes-like tokens) / (p(yes-like) + p(no-like))``;
- score checks (G-Eval): the expected value over the digit tokens of the scale.

Two ways to get the distribution:

- the embedded model (:class:`LocalProbe`): ONE forward pass per judgement, prefill only, no
  decoding; prompts that share a prefix (the same passage) reuse its key/value cache;
- an OpenAI-compatible provider: ``logprobs: true, top_logprobs: 20, max_tokens: 1``
  (:func:`distribution_from_openai`). Providers that return no logprobs fall back to the sampled
  token (``method = "sampled"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

YES_WORDS = ("yes", "Yes", "YES", "true", "True")
NO_WORDS = ("no", "No", "NO", "false", "False")


@dataclass
class Probe:
    """One judgement to score: chat messages (+ an assistant prefix) and how to read the answer.

    Attributes:
        messages: The chat prompt.
        kind: ``yes_no`` or ``score``.
        scale: ``(lo, hi)`` digits of a ``score`` check (single-digit tokens, e.g. 1-5).
        prefix: Text already written in the assistant turn before the scored token.
    """

    messages: list[dict[str, Any]]
    kind: str = "yes_no"
    scale: tuple[int, int] = (1, 5)
    prefix: str = ""


def _norm(token: str) -> str:
    return token.strip().strip("\"'*.:").strip()


def read_distribution(probs: dict[str, float], kind: str, scale: tuple[int, int] = (1, 5)) -> float | None:
    """The 0-1 score of a next-token distribution ``{token text: probability}``.

    ``yes_no``: P(yes) normalised over yes- and no-like tokens. ``score``: the expected digit over
    ``scale``, mapped to 0-1. None when no token of the answer set has any probability.
    """
    if kind == "yes_no":
        yes = sum(p for t, p in probs.items() if _norm(t) in YES_WORDS)
        no = sum(p for t, p in probs.items() if _norm(t) in NO_WORDS)
        return yes / (yes + no) if yes + no > 0 else None
    lo, hi = scale
    mass: dict[int, float] = {}
    for t, p in probs.items():
        t = _norm(t)
        if t.isdigit() and lo <= int(t) <= hi:
            mass[int(t)] = mass.get(int(t), 0.0) + p
    total = sum(mass.values())
    if total <= 0:
        return None
    expected = sum(k * p for k, p in mass.items()) / total
    return (expected - lo) / (hi - lo) if hi > lo else 1.0


def read_sampled(text: str | None, kind: str, scale: tuple[int, int] = (1, 5)) -> float | None:
    """Fallback without probabilities: the sampled answer as 1/0 (yes/no) or a scaled digit."""
    words = (text or "").strip().split()
    if not words:
        return None
    return read_distribution({words[0]: 1.0}, kind, scale)


def distribution_from_openai(logprobs: Any) -> dict[str, float] | None:
    """``{token: probability}`` of the first generated token from an OpenAI ``choice.logprobs``."""
    if not isinstance(logprobs, dict):
        return None
    content = logprobs.get("content")
    if not content or not isinstance(content, list) or not isinstance(content[0], dict):
        return None
    first = content[0]
    out: dict[str, float] = {}
    for alt in first.get("top_logprobs") or []:
        if isinstance(alt, dict) and isinstance(alt.get("logprob"), int | float) and alt.get("token") is not None:
            out[str(alt["token"])] = out.get(str(alt["token"]), 0.0) + math.exp(float(alt["logprob"]))
    if not out and first.get("token") is not None and isinstance(first.get("logprob"), int | float):
        out[str(first["token"])] = math.exp(float(first["logprob"]))
    return out or None


# ------------------------------------------------------------------------- embedded model

class LocalProbe:
    """Next-token distributions of the embedded SmolLM2 (prefill only).

    Args:
        path: GGUF file (default: the packaged one). The model is the process's
            :class:`~synthrun.llm.local_engine.LocalEngine`'s (loaded on first use), and the passes
            run on its thread (:meth:`~synthrun.llm.local_engine.LocalEngine.call`) through its fast
            path: probes are prefilled together, and a start they share (system prompt, passage) is
            computed once (:meth:`~synthrun.llm.llama_fast.FastLlama.prefill_many`).
    """

    group = 8  # probes prefilled together ...
    group_tokens = 8192  # ... within this many cache positions (~0.4 GB of keys/values for SmolLM2)

    def __init__(self, path: str | None = None):
        from pathlib import Path

        from synthrun.llm.local_engine import LocalEngine

        # The engine's model, and its thread for the passes (see synthrun/llm/openmp.py).
        self.engine = LocalEngine.get(Path(path) if path else None)
        self.tokenizer, self._tok_lock = self.engine.tokenizer, self.engine._tokenizer_lock
        self.passes = 0
        self.prompt_tokens = 0
        self._answer_ids: dict[tuple[str, tuple[int, int]], dict[int, str]] = {}

    def encode(self, probe: Probe) -> list[int]:
        return self._encode(probe)[0]

    def _encode(self, probe: Probe) -> tuple[list[int], list[int]]:
        msgs = [{"role": m.get("role", "user"), "content": str(m.get("content") or "")} for m in probe.messages]
        return self.engine.encode_prompt(msgs, suffix=probe.prefix)

    def answer_tokens(self, kind: str, scale: tuple[int, int]) -> dict[int, str]:
        """Token id -> text of the single-token spellings of the answers (with and without a space)."""
        key = (kind, scale)
        if key not in self._answer_ids:
            words = [*YES_WORDS, *NO_WORDS] if kind == "yes_no" else [str(d) for d in range(scale[0], scale[1] + 1)]
            ids: dict[int, str] = {}
            with self._tok_lock:
                for w in words:
                    for spelling in (w, " " + w):
                        tok = self.tokenizer.encode(spelling, add_special_tokens=False)
                        if len(tok) == 1:
                            ids[int(tok[0])] = w
            self._answer_ids[key] = ids
        return self._answer_ids[key]

    def score(self, probes: Sequence[Probe], progress: Any = None) -> list[float | None]:
        """The 0-1 score of every probe; probes sharing a token prefix share its prefill."""
        return self.engine.call(lambda: self._score(probes, progress))

    def _score(self, probes: Sequence[Probe], progress: Any) -> list[float | None]:
        import torch

        encoded = [self._encode(p) for p in probes]
        order = sorted(range(len(probes)), key=lambda i: encoded[i][0])  # neighbours share their starts
        fast = self.engine.fast
        out: list[float | None] = [None] * len(probes)
        with torch.inference_mode():
            longest = max((len(ids) for ids, _ in encoded), default=1)
            size = max(1, min(self.group, len(order), self.group_tokens // longest))
            cache = fast.new_cache(size, longest)
            for lo in range(0, len(order), size):
                group = order[lo:lo + size]
                filled = fast.prefill_many(cache, [(slot, *encoded[i]) for slot, i in enumerate(group)])
                for i, (logits, reused) in zip(group, filled, strict=True):
                    self.passes += 1
                    self.prompt_tokens += len(encoded[i][0]) - reused
                    probs = torch.softmax(logits.float(), dim=-1)
                    probe = probes[i]
                    dist: dict[str, float] = {}
                    for tok_id, word in self.answer_tokens(probe.kind, probe.scale).items():
                        dist[word] = dist.get(word, 0.0) + float(probs[tok_id])
                    out[i] = read_distribution(dist, probe.kind, probe.scale)
                    if progress is not None:
                        progress()
        return out
