"""The one LLM client every stage uses: concurrency, retries, cache, JSON parsing, token and cost counts."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from synthrun.errors import ProviderError
from synthrun.io import StorageError
from synthrun.llm.backends import make_transport
from synthrun.llm.cache import ResponseCache, request_key
from synthrun.llm.jsonparse import ParseFailure, parse_answer
from synthrun.llm.pricing import token_prices
from synthrun.llm.provider_config import ProviderConfig, whole_number
from synthrun.llm.transport import Completion, TransportError, api_key
from synthrun.llm.types import LLMRequest, LLMResult, LLMStats

log = logging.getLogger(__name__)
T = TypeVar("T")

_SAMPLING_DEFAULTS = ("temperature", "max_tokens", "seed")
_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]")
REASK_PROMPT = "llm_json_retry"
#: Attempt failures that say the provider is down or broken (a 429 is the provider pacing us: not counted).
BREAKER_REASONS = {"connection", "timeout", "http_5xx", "bad_response"}


def check_concurrency(value: Any, where: str = "provider.concurrency") -> int | None:
    """``value`` as an int >= 1 (None when unset), else a one-line :class:`ProviderError`."""
    return whole_number(value, where)


class LLMClient:
    """Sends chat requests to one provider, concurrently, with retries, a cache and JSON validation.

    Args:
        provider: Provider config (``conf/provider/*.yaml``): ``model`` (litellm model string),
            ``api_base``, ``api_key_env`` (name of the env var holding the key, read at call
            time), ``concurrency``, ``timeout`` (seconds per attempt), ``max_retries``,
            ``temperature``, ``max_tokens``, ``seed``; optional ``openai_compatible`` (force the
            built-in HTTP client), ``json_mode`` (``schema`` | ``object`` | ``none``), ``extra``
            (dict sent with every request), ``price_in``/``price_out`` (USD per 1M tokens),
            ``json_retries`` (re-asks after an unusable JSON answer, default 2),
            ``retry_backoff`` (first back-off in seconds, default 1), ``circuit_breaker``
            (consecutive failed attempts - connection, timeout, 5xx - after which no more
            requests are sent, default 10, 0 = never) and ``circuit_breaker_s`` (how long
            those failures must have lasted with no success in between, default 20 s).
        cache_path: SQLite file of cached answers, or None for no cache.
        stats: Counters to add to (a fresh :class:`LLMStats` if None).
        show_progress: Draw a progress bar in :meth:`map`.
    """

    def __init__(self, provider: dict[str, Any], cache_path: Path | None = None, stats: LLMStats | None = None,
                 show_progress: bool = True, budget: Any = None):
        cfg = ProviderConfig.parse(provider)
        if cfg.api_key_required and not api_key(cfg.as_dict()):
            raise ProviderError(f"provider {cfg.name or cfg.model!r} needs a key: export "
                                f"{cfg.api_key_env}=... (keys come from the environment only); "
                                f"no request was sent")
        self.config = cfg
        self.provider = cfg.as_dict()
        self.model = cfg.model
        self.concurrency = cfg.concurrency
        self.timeout = cfg.timeout
        self.max_retries = max(0, cfg.max_retries)
        self.json_retries = max(0, cfg.json_retries)
        self.retry_backoff = cfg.retry_backoff
        self.json_mode = cfg.json_mode
        self.stats = stats if stats is not None else LLMStats()
        self.show_progress = show_progress
        self._defaults: dict[str, Any] = {k: getattr(cfg, k) for k in _SAMPLING_DEFAULTS
                                          if getattr(cfg, k) is not None}
        self._defaults.update(cfg.extra)
        self._price_in, self._price_out = token_prices(self.provider)
        self.cache = ResponseCache(cache_path) if cache_path else None
        self._transport = make_transport(cfg)
        self._schemas: dict[type[BaseModel], tuple[Any, dict[str, Any] | None]] = {}
        self._inflight: dict[str, asyncio.Future[LLMResult]] = {}
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self._logged: set[str] = set()
        self.breaker_after = max(0, cfg.circuit_breaker)
        self.breaker_seconds = cfg.circuit_breaker_s
        self._streak = 0
        self._streak_start = 0.0
        self.budget = budget  # a synthrun.budget.BudgetGuard: asked before every request is sent
        self._runner: asyncio.Runner | None = None  # set inside :meth:`session`

    # ------------------------------------------------------------------ public API

    def map(self, requests: list[LLMRequest], desc: str = "") -> list[LLMResult]:
        """Run ``requests`` concurrently and return their results in the same order.

        Never raises for a single failed request: its ``result.error`` holds the reason code.
        """
        return self._run_sync(self._amap_and_close(list(requests), desc))

    async def amap(self, requests: list[LLMRequest], desc: str = "") -> list[LLMResult]:
        """Async :meth:`map` (at most ``concurrency`` requests in flight)."""
        from synthrun.progress import make_progress

        requests = list(requests)
        results: list[LLMResult | None] = [None] * len(requests)
        if not requests:
            return []
        jobs = iter(enumerate(requests))
        with make_progress(self.show_progress and len(requests) > 1) as progress:
            task = progress.add_task(desc or self.model, total=len(requests))

            async def worker() -> None:
                for i, request in jobs:  # one shared iterator: each job is taken exactly once
                    results[i] = await self.acomplete(request)
                    progress.advance(task)

            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(requests)))))
        return results  # type: ignore[return-value]

    def complete(self, messages: list[dict[str, Any]], schema: type[BaseModel] | None = None,
                 **params: Any) -> LLMResult:
        """One synchronous request (no progress bar)."""
        request = LLMRequest(messages=messages, schema=schema, params=params)

        async def one() -> LLMResult:
            try:
                return await self.acomplete(request)
            finally:
                await self._release()

        return self._run_sync(one())

    async def acomplete(self, request: LLMRequest) -> LLMResult:
        """One request: from the cache if answered before, else from the model (never raises)."""
        self.stats.calls += 1
        if self.stats.halted:  # the provider is down or the cache cannot store: send nothing more
            return self._account(LLMResult(request=request, error=self.stats.halted, model=self.model))
        try:
            return self._account(await self._complete(request))
        except Exception as exc:  # noqa: BLE001 - a bug must not sink the whole batch
            log.exception("%s: unexpected error in the LLM client", self.model)
            return self._account(LLMResult(request=request, error="client_error", model=self.model,
                                           text=f"{type(exc).__name__}: {exc}"))

    async def _complete(self, request: LLMRequest) -> LLMResult:
        params = {**self._defaults, **request.params} if request.params else self._defaults
        schema_json, response_format = self._schema_info(request.schema)
        if self.cache is None:
            return await self._ask(request, params, response_format)
        key = request_key(self.model, request.messages, schema_json, params)
        pending = self._inflight.get(key)
        if pending is not None:  # the same request is already on its way: share its answer
            first: LLMResult = await asyncio.shield(pending)
            return self._copy(first, request, cached=first.ok)
        stored = self.cache.get(key)
        if stored is not None:
            result = self._from_cache(request, stored)
            if result is not None:
                return result
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._ask(request, params, response_format)
            if result.ok:
                stored = {
                    "text": result.text, "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens, "cost_usd": result.cost_usd,
                }
                if result.logprobs is not None:
                    stored["logprobs"] = result.logprobs
                self._store(key, stored)
            future.set_result(result)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                future.exception()  # mark it retrieved: the caller of this request gets the error
            raise
        finally:
            del self._inflight[key]
        return result

    async def aclose(self) -> None:
        """Close the HTTP session :meth:`amap`/:meth:`acomplete` opened on the running loop."""
        await self._transport.aclose()

    @contextmanager
    def session(self) -> Iterator[LLMClient]:
        """Keep one event loop and one HTTP session (its open connections) across :meth:`map` calls.

        Without it every :meth:`map` runs on a fresh loop and closes its session at the end, which
        costs a new set of connections per call; a sharded stage's shards run inside one session.
        A no-op inside a running loop or an outer session.
        """
        try:
            asyncio.get_running_loop()
            nested = True
        except RuntimeError:
            nested = self._runner is not None
        if nested:
            yield self
            return
        self._runner = runner = asyncio.Runner()
        try:
            yield self
        finally:
            self._runner = None
            try:
                runner.run(self._transport.aclose())
            finally:
                runner.close()

    def close(self) -> None:
        """Close the cache file (the client cannot be used afterwards)."""
        if self.cache is not None:
            self.cache.close()

    # ------------------------------------------------------------------ internals

    def _store(self, key: str, value: dict[str, Any]) -> None:
        """Cache one answer; when the disk refuses, keep it (spill file) and stop sending requests."""
        assert self.cache is not None
        try:
            self.cache.put(key, self.model, value)
        except StorageError as exc:
            kept = self.cache.spill(key, self.model, value)
            where = f"answers received are kept in {kept}" if kept else "could not keep the answer anywhere"
            self._halt("storage", f"{exc}; no more LLM requests sent ({where}, stored on the next run)")

    def _halt(self, reason: str, message: str) -> None:
        if not self.stats.halted:
            self.stats.halted, self.stats.halt_message = reason, message
            log.warning("%s: %s", self.model, message)

    def _breaker_check(self) -> None:
        if self.stats.halted:
            raise TransportError(self.stats.halted, self.stats.halt_message, False)

    def _breaker_record(self, exc: TransportError | None) -> None:
        """Count consecutive provider-side failures; open the circuit after too many, for too long."""
        if exc is None:
            self._streak = 0
            return
        if exc.reason not in BREAKER_REASONS or not self.breaker_after:
            return
        now = time.monotonic()
        if self._streak == 0:
            self._streak_start = now
        self._streak += 1
        if self._streak >= self.breaker_after and now - self._streak_start >= self.breaker_seconds:
            self._halt("circuit_open", f"{self._streak} attempts in a row failed over "
                       f"{now - self._streak_start:.0f}s (last: {exc.reason}); stopped sending requests to "
                       f"the provider")

    def _run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._runner.run(coro) if self._runner is not None else asyncio.run(coro)
        # Called from inside a running loop (e.g. a notebook): run on a private loop in a thread.
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = asyncio.run(coro)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                box["error"] = exc

        thread = threading.Thread(target=target, name="synthrun-llm")
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value

    async def _amap_and_close(self, requests: list[LLMRequest], desc: str) -> list[LLMResult]:
        try:
            return await self.amap(requests, desc)
        finally:
            await self._release()

    async def _release(self) -> None:
        """Close the HTTP session after a synchronous call, unless a :meth:`session` keeps it open."""
        if self._runner is None:
            await self._transport.aclose()

    def _schema_info(self, schema: type[BaseModel] | None) -> tuple[Any, dict[str, Any] | None]:
        if schema is None:
            return None, None
        info = self._schemas.get(schema)
        if info is None:
            schema_json = schema.model_json_schema()
            if self.json_mode == "schema":
                name = _NAME_OK.sub("_", schema.__name__)[:64] or "answer"
                fmt: dict[str, Any] | None = {"type": "json_schema", "json_schema": {"name": name, "schema": schema_json}}
            elif self.json_mode == "object":
                fmt = {"type": "json_object"}
            else:
                fmt = None
            info = self._schemas[schema] = (schema_json, fmt)
        return info

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem = asyncio.Semaphore(self.concurrency)
            self._sem_loop = loop
        return self._sem

    def _wait(self, retry_state: Any) -> float:
        from tenacity import wait_exponential, wait_random

        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, TransportError) and exc.retry_after is not None:
            return min(exc.retry_after, 300.0)
        # exponential back-off (backoff, 2*backoff, 4*backoff ... up to 60 s) plus up to backoff of jitter
        backoff = wait_exponential(multiplier=self.retry_backoff, max=60) + wait_random(0, self.retry_backoff)
        return backoff(retry_state)

    async def _send(self, messages: list[dict[str, Any]], params: dict[str, Any],
                    response_format: dict[str, Any] | None, counter: list[int]) -> Completion:
        """One answer from the transport, retrying transient failures with back-off."""
        sem = self._semaphore()
        try:  # first attempt without tenacity's overhead: it almost always succeeds
            async with sem:
                return await self._attempt(messages, params, response_format, counter)
        except TransportError as exc:
            if not exc.retryable or self.max_retries == 0:
                raise
            first_error = exc
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        def before_sleep(state: Any) -> None:
            self.stats.retries += 1

        # tenacity's attempt 1 re-raises the first failure, so its counting and waits line up.
        state_err: list[BaseException] = [first_error]

        async def attempt() -> Completion:
            if state_err:
                raise state_err.pop()
            async with sem:
                return await self._attempt(messages, params, response_format, counter)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            retry=retry_if_exception(lambda e: isinstance(e, TransportError) and e.retryable),
            wait=self._wait,
            before_sleep=before_sleep,
            reraise=True,
        )
        completion: Completion = await retrying(attempt)
        return completion

    async def _attempt(self, messages: list[dict[str, Any]], params: dict[str, Any],
                       response_format: dict[str, Any] | None, counter: list[int]) -> Completion:
        """One attempt through the circuit breaker (fails at once, unsent, when it is open)."""
        self._breaker_check()
        ticket = self._reserve(messages, params)
        counter[0] += 1
        completion = None
        try:
            completion = await self._transport.send(messages, params, response_format)
        except TransportError as exc:
            self._breaker_record(exc)
            raise
        finally:
            if ticket is not None:
                self.budget.settle(ticket, getattr(completion, "prompt_tokens", 0),
                                   getattr(completion, "completion_tokens", 0), self._price_in, self._price_out)
        self._breaker_record(None)
        return completion

    def _reserve(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        """Ask the budget for one more request; when a cap refuses, stop sending (``budget_exhausted``)."""
        if self.budget is None:
            return None
        from synthrun.budget import BudgetExhaustedSignal

        try:
            return self.budget.reserve(messages, params, self._price_in, self._price_out)
        except BudgetExhaustedSignal as exc:
            self._halt("budget_exhausted", f"{exc} reached: no more requests sent")
            raise TransportError("budget_exhausted", str(exc), False) from None

    async def _ask(self, request: LLMRequest, params: dict[str, Any],
                   response_format: dict[str, Any] | None) -> LLMResult:
        """Ask the model, re-asking when a JSON answer does not parse or validate."""
        messages = request.messages
        counter = [0]
        p_tok = c_tok = 0
        text: str | None = None
        reason = ""
        for ask in range(self.json_retries + 1 if request.schema is not None else 1):
            try:
                completion = await self._send(messages, params, response_format, counter)
            except TransportError as exc:
                if exc.reason not in ("circuit_open", "storage", "budget_exhausted"):  # those were logged once when they began
                    self._log_once(exc.reason + str(exc.status), f"{self.model}: {exc}")
                return self._result(request, text, None, exc.reason, p_tok, c_tok, counter[0])
            p_tok += completion.prompt_tokens
            c_tok += completion.completion_tokens
            text = completion.text
            if request.schema is None:
                if text is None or not text.strip():
                    return self._result(request, text, None, "empty_response", p_tok, c_tok, counter[0])
                result = self._result(request, text, None, None, p_tok, c_tok, counter[0])
                result.logprobs = completion.logprobs
                return result
            try:
                parsed = parse_answer(text, request.schema)
            except ParseFailure as failure:
                reason = failure.reason
                if ask < self.json_retries:
                    self.stats.retries += 1
                    messages = [*messages, {"role": "assistant", "content": text or ""},
                                self._reask_message(failure)]
                continue
            return self._result(request, text, parsed, None, p_tok, c_tok, counter[0])
        return self._result(request, text, None, reason, p_tok, c_tok, counter[0])

    def _reask_message(self, failure: ParseFailure) -> dict[str, str]:
        from synthrun.prompts import PromptLibrary

        rendered = PromptLibrary().render(REASK_PROMPT, reason=failure.reason, error=failure.detail[:300])
        return rendered[-1]

    def _result(self, request: LLMRequest, text: str | None, parsed: BaseModel | None, error: str | None,
                p_tok: int, c_tok: int, attempts: int) -> LLMResult:
        return LLMResult(
            request=request, text=text, parsed=parsed, error=error, model=self.model,
            prompt_tokens=p_tok, completion_tokens=c_tok,
            cost_usd=p_tok * self._price_in + c_tok * self._price_out, attempts=attempts,
        )

    def _from_cache(self, request: LLMRequest, stored: dict[str, Any]) -> LLMResult | None:
        text = stored.get("text")
        parsed = None
        if request.schema is not None:
            try:
                parsed = parse_answer(text, request.schema)
            except ParseFailure:
                return None  # the schema changed since: ask again
        return LLMResult(
            request=request, text=text, parsed=parsed, error=None, model=self.model,
            prompt_tokens=int(stored.get("prompt_tokens") or 0),
            completion_tokens=int(stored.get("completion_tokens") or 0),
            cost_usd=float(stored.get("cost_usd") or 0.0), cached=True, attempts=0,
            logprobs=stored.get("logprobs"),
        )

    @staticmethod
    def _copy(first: LLMResult, request: LLMRequest, cached: bool) -> LLMResult:
        parsed = first.parsed.model_copy(deep=True) if first.parsed is not None else None
        return LLMResult(
            request=request, text=first.text, parsed=parsed, error=first.error, model=first.model,
            prompt_tokens=first.prompt_tokens, completion_tokens=first.completion_tokens,
            cost_usd=first.cost_usd, cached=cached, attempts=0, logprobs=first.logprobs,
        )

    def _account(self, result: LLMResult) -> LLMResult:
        stats = self.stats
        stats.prompt_tokens += result.prompt_tokens
        stats.completion_tokens += result.completion_tokens
        stats.cost_usd += result.cost_usd
        if result.cached:
            stats.cache_hits += 1
        if result.error is not None:
            stats.add_failure(result.error)
        return result

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning(message)
