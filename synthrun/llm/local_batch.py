"""The decoding loop of the embedded engine: queued jobs, rows in a batch, sampling under constraints.

:class:`_Batch` holds the rows decoded together (continuous batching: a finished row leaves at once,
a waiting job takes its slot). Each row keeps its own seed, temperature, token budget and, for JSON
answers, its schema automaton (:mod:`synthrun.llm.constrain`). The forward passes are
:class:`synthrun.llm.llama_fast.FastLlama`'s.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synthrun.llm.local_engine import LocalEngine

log = logging.getLogger("synthrun.llm.local_engine")


@dataclass
class GenResult:
    """One finished generation.

    Attributes:
        text: The answer (for a JSON schema: JSON text that matches it).
        prompt_tokens: Tokens in the formatted prompt.
        completion_tokens: Tokens generated (the end-of-turn token not counted).
        finish_reason: ``"stop"`` (ended by itself, or JSON complete) or ``"length"`` (budget spent).
        closed_early: For JSON answers, True when the token budget forced the JSON to be closed
            before the model would have closed it (the text is still valid).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    closed_early: bool = False


class _JobFuture(Future["GenResult"]):
    """A request's future; ``abandoned`` is set when its awaiting task was cancelled."""

    abandoned = False


@dataclass
class _Job:
    prompt_ids: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    frequency_penalty: float
    presence_penalty: float
    seed: int
    constraint: Any
    stop: list[str]
    splits: list[int] = field(default_factory=list)  # message boundaries (token offsets) in prompt_ids
    future: _JobFuture = field(default_factory=_JobFuture)


class _Row:
    """One sequence being decoded in the batch."""

    __slots__ = ("job", "tokens", "state", "gen", "pos", "closed_early", "text")

    def __init__(self, job: _Job, torch: Any):
        self.job = job
        self.tokens: list[int] = []
        self.state = job.constraint.initial_state if job.constraint is not None else None
        self.gen = torch.Generator().manual_seed(job.seed)
        self.pos = len(job.prompt_ids)
        self.closed_early = False
        self.text: str | None = None




class _Batch:
    """The rows being decoded together, each in its own slot of the KV cache."""

    def __init__(self, engine: LocalEngine):
        self.engine = engine
        self.torch = engine._torch
        self.rows: list[_Row] = []  # row i lives in slot i of the cache
        self.cache: Any = None  # llama_fast.SlotCache
        self.logits: Any = None  # [B, V] next-token logits of each row

    def add(self, job: _Job) -> None:
        """Prefills one prompt alone into the next free slot (its numbers do not depend on the batch)."""
        torch = self.torch
        engine = self.engine
        fast = engine.fast
        if self.cache is None:
            self.cache = fast.new_cache(max(engine.max_batch, 1))
        slot = len(self.rows)
        if slot >= self.cache.slots:
            grown = fast.new_cache(slot + 1, self.cache.capacity)
            grown.k[:, : self.cache.slots] = self.cache.k
            grown.v[:, : self.cache.slots] = self.cache.v
            self.cache = grown
        start = time.perf_counter()
        logits, reused = fast.prefill(self.cache, slot, job.prompt_ids, job.splits)
        stats = engine.stats
        stats["prefill_seconds"] += time.perf_counter() - start
        stats["prefill_tokens"] += len(job.prompt_ids) - reused
        stats["prefix_reused_tokens"] += reused
        logits = logits.float()[None]
        self.logits = logits if self.logits is None else torch.cat([self.logits, logits], dim=0)
        self.rows.append(_Row(job, torch))

    def step(self) -> None:
        """Picks one token per row, retires finished rows, and runs one decode forward pass."""
        keep: list[int] = []
        tokens: list[int] = []
        for i, row in enumerate(self.rows):
            if row.job.future.abandoned:
                self._finish(row, "cancelled")
                continue
            try:
                token = self._pick(row, self.logits[i])
                reason = self._advance(row, token)
            except Exception as exc:  # one broken row must not take the batch down
                log.exception("local engine row failed")
                if not row.job.future.done():
                    row.job.future.set_exception(exc)
                continue
            if reason is None:
                keep.append(i)
                tokens.append(token)
            else:
                self._finish(row, reason)
        if len(keep) < len(self.rows):
            self._select(keep)
        if not self.rows:
            return
        stats = self.engine.stats
        stats["decode_steps"] += 1
        stats["peak_batch"] = max(stats["peak_batch"], len(self.rows))
        start = time.perf_counter()
        logits = self.engine.fast.decode(self.cache, tokens, [r.pos for r in self.rows])
        stats["decode_seconds"] += time.perf_counter() - start
        for row in self.rows:
            row.pos += 1
        self.logits = logits.float()

    def _select(self, keep: list[int]) -> None:
        """Keeps rows ``keep`` (ascending), moving each down to slot = its new index."""
        for new, old in enumerate(keep):
            if new != old:
                self.cache.move(old, new, self.rows[old].pos)
        self.rows = [self.rows[i] for i in keep]
        if not self.rows:
            self.logits = None
            return
        self.logits = self.logits[self.torch.tensor(keep, dtype=self.torch.long)]

    def _pick(self, row: _Row, logits: Any) -> int:
        torch = self.torch
        job = row.job
        allowed = None
        if (job.frequency_penalty or job.presence_penalty) and row.tokens:
            counts = torch.bincount(torch.tensor(row.tokens), minlength=len(logits))[: len(logits)].to(logits.dtype)
            logits = logits - job.frequency_penalty * counts - job.presence_penalty * (counts > 0).to(logits.dtype)
        if job.constraint is not None:
            remaining = job.max_tokens - len(row.tokens)
            allowed = job.constraint.allowed(row.state, remaining)
            if allowed is None or len(allowed) == 0:
                return self.engine.eos_id
            if job.constraint.forced(row.state, remaining):
                row.closed_early = True
            logits = logits[allowed]
        if job.temperature <= 1e-5:
            choice = int(torch.argmax(logits))
        else:
            top = None
            if 0 < job.top_k < len(logits):
                logits, top = torch.topk(logits, job.top_k)  # sorted, so ties resolve the same way
            probs = torch.softmax(logits / job.temperature, dim=-1)
            if job.top_p < 1.0:
                sorted_p, order = torch.sort(probs, descending=True)
                cut = torch.cumsum(sorted_p, dim=-1) - sorted_p > job.top_p
                sorted_p[cut] = 0.0
                probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
            # Inverse-CDF draw: one uniform number per token, ~20x cheaper than torch.multinomial here.
            cdf = torch.cumsum(probs, dim=-1)
            u = torch.rand(1, generator=row.gen, dtype=cdf.dtype) * cdf[-1]
            choice = int(torch.searchsorted(cdf, u, right=True))  # cdf[choice-1] <= u < cdf[choice]
            if choice >= len(cdf):  # rounding at the very top: take the last possible token
                choice = int(torch.nonzero(probs)[-1])
            if top is not None:
                choice = int(top[choice])
        return int(allowed[choice]) if allowed is not None else choice

    def _advance(self, row: _Row, token: int) -> str | None:
        """Appends ``token``; returns the finish reason when the row is done."""
        job = row.job
        constraint = job.constraint
        if constraint is not None:
            if token == self.engine.eos_id:
                return "stop" if constraint.is_final(row.state) else "length"
            row.tokens.append(token)
            row.state = constraint.next_state(row.state, token)
            if row.state is None:
                raise RuntimeError(f"token {token} left the JSON automaton")
            if constraint.is_done(row.state):
                return "stop"
            if len(row.tokens) >= job.max_tokens:
                return "stop" if constraint.is_final(row.state) else "length"
            return None
        if token in self.engine.stop_ids:
            return "stop"
        row.tokens.append(token)
        if job.stop:
            text = self.engine.decode(row.tokens)
            cuts = [text.find(s) for s in job.stop if s in text]
            if cuts:
                row.text = text[: min(cuts)]
                return "stop"
        if len(row.tokens) >= job.max_tokens:
            return "length"
        return None

    def _finish(self, row: _Row, reason: str) -> None:
        text = row.text
        if text is None:
            text = self.engine.decode(row.tokens)
            if row.job.constraint is not None:
                text = row.job.constraint.finalize(text)
        result = GenResult(
            text=text,
            prompt_tokens=len(row.job.prompt_ids),
            completion_tokens=len(row.tokens),
            finish_reason=reason,
            closed_early=row.closed_early,
        )
        self.engine.stats["requests"] += 1
        self.engine.stats["completion_tokens"] += result.completion_tokens
        if not row.job.future.done():
            row.job.future.set_result(result)

    def fail(self, exc: BaseException) -> None:
        for row in self.rows:
            if not row.job.future.done():
                row.job.future.set_exception(exc)
        self.rows = []
        self.logits = None


