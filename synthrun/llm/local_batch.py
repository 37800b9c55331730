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
MAX_FORCED = 16  # forced tokens fed in one pass at most


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

    __slots__ = ("job", "tokens", "state", "gen", "pos", "closed_early", "text", "logits", "draft")

    def __init__(self, job: _Job, torch: Any):
        self.job = job
        self.tokens: list[int] = []
        self.state = job.constraint.initial_state if job.constraint is not None else None
        self.gen = torch.Generator().manual_seed(job.seed)
        self.pos = len(job.prompt_ids)
        self.closed_early = False
        self.text: str | None = None
        self.logits: Any = None  # [1 + len(draft), V]: next-token logits after the last fed token, then per draft
        self.draft: list[int] = []  # guessed tokens fed after the decided ones, checked at the next step



class _Batch:
    """The rows being decoded together, each in its own slot of the KV cache.

    A step decides each row's next tokens and then runs one forward pass over all rows. A row may
    feed several tokens in that pass: besides the token it picked, the tokens its JSON automaton
    forces (exactly one allowed token: keys, quotes, braces) and up to ``engine.draft_tokens`` guessed
    tokens (prompt lookup: what followed the row's last n-gram earlier in its prompt or answer).
    Guesses are checked at the next step: the row picks its token from the logits after each guess
    by the same rule and the same random draws as plain decoding, and keeps the guess only when the
    pick equals it, so the answer is the one plain decoding gives (up to rounding in the wider pass).
    """

    def __init__(self, engine: LocalEngine):
        self.engine = engine
        self.torch = engine._torch
        self.rows: list[_Row] = []  # row i lives in slot i of the cache
        self.cache: Any = None  # llama_fast.SlotCache

    def admit(self, jobs: list[_Job]) -> None:
        """Adds the jobs (see :meth:`add`); if that fails, one by one, so a bad prompt fails alone."""
        try:
            self.add(jobs)
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
                return
            for job in jobs:
                try:
                    self.add([job])
                except Exception as one:
                    job.future.set_exception(one)

    def add(self, jobs: list[_Job]) -> None:
        """Prefills the jobs' prompts into the next free slots, together (see ``FastLlama.prefill_many``:
        a prompt's numbers depend neither on the other prompts nor on the batch)."""
        engine = self.engine
        fast = engine.fast
        if self.cache is None:
            self.cache = fast.new_cache(max(engine.max_batch, 1))
        first = len(self.rows)
        if first + len(jobs) > self.cache.slots:
            grown = fast.new_cache(first + len(jobs), self.cache.capacity)
            grown.k[:, : self.cache.slots] = self.cache.k
            grown.v[:, : self.cache.slots] = self.cache.v
            self.cache = grown
        start = time.perf_counter()
        filled = fast.prefill_many(self.cache, [(first + i, job.prompt_ids, job.splits) for i, job in enumerate(jobs)])
        stats = engine.stats
        stats["prefill_seconds"] += time.perf_counter() - start
        for job, (logits, reused) in zip(jobs, filled, strict=True):
            stats["prefill_tokens"] += len(job.prompt_ids) - reused
            stats["prefix_reused_tokens"] += reused
            row = _Row(job, self.torch)
            row.logits = logits.float()[None]
            self.rows.append(row)

    def step(self) -> None:
        """Picks each row's next tokens, retires finished rows, and runs one forward pass."""
        keep: list[int] = []
        feeds: list[list[int]] = []
        for i, row in enumerate(self.rows):
            if row.job.future.abandoned:
                self._finish(row, "cancelled")
                continue
            try:
                feed, reason = self._decide(row)
            except Exception as exc:  # one broken row must not take the batch down
                log.exception("local engine row failed")
                if not row.job.future.done():
                    row.job.future.set_exception(exc)
                continue
            if reason is None:
                keep.append(i)
                feeds.append(feed)
            else:
                self._finish(row, reason)
        if len(keep) < len(self.rows):
            self._select(keep)
        if not self.rows:
            return
        stats = self.engine.stats
        stats["decode_steps"] += 1
        stats["peak_batch"] = max(stats["peak_batch"], len(self.rows))
        full = [feed + row.draft for feed, row in zip(feeds, self.rows, strict=True)]
        stats["draft_tokens"] += sum(len(row.draft) for row in self.rows)
        start = time.perf_counter()
        logits = self.engine.fast.decode_multi(self.cache, full, [r.pos for r in self.rows]).float()
        stats["decode_seconds"] += time.perf_counter() - start
        offset = 0
        for row, feed, fed in zip(self.rows, feeds, full, strict=True):
            row.logits = logits[offset + len(feed) - 1: offset + len(fed)]
            row.pos += len(feed)
            offset += len(fed)

    def _decide(self, row: _Row) -> tuple[list[int], str | None]:
        """Checks the row's guesses, picks its next token and the forced ones after it; sets new guesses.

        Returns the tokens to feed (none when the row is finished) and the finish reason.
        """
        accepted = 0
        while True:
            token = self._pick(row, row.logits[accepted])
            reason = self._advance(row, token)
            if reason is not None:
                return [], reason
            if accepted < len(row.draft) and token == row.draft[accepted]:
                accepted += 1  # the guess is what the row picked: its keys/values are already cached
                continue
            break
        row.pos += accepted
        stats = self.engine.stats
        stats["draft_accepted"] += accepted
        feed = [token]
        reason = self._jump(row, feed)
        if reason is not None:
            return [], reason
        stats["forced_tokens"] += len(feed) - 1
        row.draft = self._guess(row)
        return feed, None

    def _jump(self, row: _Row, feed: list[int]) -> str | None:
        """Appends to ``feed`` the tokens the JSON automaton allows alone (no sampling needed)."""
        job = row.job
        constraint = job.constraint
        if constraint is None:
            return None
        while len(feed) < MAX_FORCED:
            remaining = job.max_tokens - len(row.tokens)
            allowed = constraint.allowed(row.state, remaining)
            if allowed is None or len(allowed) != 1 or int(allowed[0]) == self.engine.eos_id:
                return None
            if constraint.forced(row.state, remaining):
                row.closed_early = True
            if job.temperature > 1e-5:  # the uniform draw plain decoding makes for this token
                self.torch.rand(1, generator=row.gen, dtype=self.torch.float32)
            token = int(allowed[0])
            reason = self._advance(row, token)
            if reason is not None:
                return reason
            feed.append(token)
        return None

    def _guess(self, row: _Row) -> list[int]:
        """Prompt lookup: the tokens that followed the latest earlier occurrence of the row's last n-gram."""
        job = row.job
        k = min(int(getattr(self.engine, "draft_tokens", 0)), job.max_tokens - len(row.tokens) - 1)
        if k <= 0:
            return []
        guess = lookup(job.prompt_ids + row.tokens, k)
        constraint = job.constraint
        if constraint is None or not guess:
            stops = [i for i, t in enumerate(guess) if t in self.engine.stop_ids]
            return guess[: stops[0]] if stops else guess
        state = row.state
        kept: list[int] = []
        for token in guess:  # keep the guesses the automaton accepts (others would be rejected anyway)
            state = constraint.next_state(state, token) if token != self.engine.eos_id else None
            if state is None:
                break
            kept.append(token)
            if constraint.is_done(state):
                break
        return kept

    def _select(self, keep: list[int]) -> None:
        """Keeps rows ``keep`` (ascending), moving each down to slot = its new index."""
        for new, old in enumerate(keep):
            if new != old:
                self.cache.move(old, new, self.rows[old].pos)
        self.rows = [self.rows[i] for i in keep]

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


def lookup(tokens: list[int], k: int, sizes: tuple[int, ...] = (3, 2)) -> list[int]:
    """Up to ``k`` tokens that followed the latest earlier occurrence of the last n-gram of ``tokens``.

    Tries the n-gram sizes in order (longest first); returns [] when none occurs earlier.
    """
    for n in sizes:
        if len(tokens) <= n:
            continue
        tail = tokens[-n:]
        first = tail[0]
        for start in range(len(tokens) - n - 1, -1, -1):
            if tokens[start] == first and tokens[start:start + n] == tail:
                return tokens[start + n: start + n + k]
    return []


