"""ONNX Runtime route for sentence embeddings: the same model, exported once from its installed weights.

For a sentence-transformers model made of ``Transformer -> mean Pooling -> Normalize`` (the packaged
all-MiniLM-L6-v2 is one), :class:`OnnxEncoder` runs the transformer with onnxruntime instead of
PyTorch and does the pooling in numpy. The ONNX file is exported locally from the model folder's
own weights (``torch.onnx``; nothing is downloaded) the first time it is needed and kept under
``<model cache>/embed-onnx-<digest of the weights>/`` (the folder of the embedded LLM's
de-quantized cache, ``SYNTHRUN_MODEL_CACHE`` relocates it), written to a temp folder and renamed,
so a crash never leaves a half file in place. Two derived graphs are made from that export the same
way (each in its own folder with a marker naming the digest): ``-opt`` (onnxruntime's transformer
optimizer fuses attention, layer norm and GELU; the float vectors of the plain export to rounding,
cosine 1.00000) and ``-int8`` (dynamic int8 quantization of the fused graph's MatMul weights,
per channel: faster but cosine ~0.98-0.99 to the float vectors, so it is only used when asked for).

Texts are tokenized with the model's fast tokenizer, sorted by length and batched, so a batch pads
to its own longest text only. The vectors agree with the PyTorch route to float rounding (cosine
> 0.9999, measured in ``benchmarks/selection.py``), so they share its on-disk cache.

:func:`available` says whether the route can be used (onnxruntime installed and the model of the
supported shape); :class:`synthrun.embeddings.Embedder` falls back to PyTorch otherwise.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_MARKER = "synthrun_onnx.json"
_FORMAT = 1
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_export_lock = threading.Lock()
VARIANTS = ("plain", "opt", "int8")  # the raw export, the fused float graph, its int8 quantization


def _modules(folder: Path) -> list[str]:
    try:
        return [str(m.get("type", "")).rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())]
    except (OSError, ValueError, AttributeError):
        return []


def supported(folder: str | Path) -> bool:
    """Whether ``folder`` holds a Transformer + mean-pooling (+ Normalize) sentence-transformers model."""
    path = Path(folder)
    mods = _modules(path)
    if mods[:2] != ["Transformer", "Pooling"] or any(m != "Normalize" for m in mods[2:]):
        return False
    if not (path / "tokenizer.json").is_file() or not (path / "model.safetensors").is_file():
        return False
    try:
        pool = json.loads((path / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    others = [k for k, v in pool.items() if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"]
    return bool(pool.get("pooling_mode_mean_tokens")) and not others


def available(folder: str | Path) -> bool:
    """onnxruntime is installed and ``folder`` is a model this route can run."""
    return importlib.util.find_spec("onnxruntime") is not None and supported(folder)


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def export_dir(folder: str | Path) -> Path:
    """Where the ONNX export of the model in ``folder`` is (or will be) kept."""
    from synthrun.llm.local_weights import model_cache_root

    return model_cache_root() / f"embed-onnx-{_digest(Path(folder))}"


def _export(folder: Path, out: Path) -> None:
    """Exports the transformer of ``folder`` to ``out`` (an ONNX file) with torch.onnx."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class Encoder(torch.nn.Module):
        def __init__(self, base: Any):
            super().__init__()
            self.base = base

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.base(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    base = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    sample = tokenizer(["an example sentence", "a second, longer example sentence"], padding=True,
                       return_tensors="pt")
    args = tuple(sample.get(k, torch.zeros_like(sample["input_ids"])) for k in _INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    with torch.no_grad():
        torch.onnx.export(Encoder(base), args, str(out), input_names=list(_INPUTS),
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)


def _heads_and_hidden(folder: Path) -> tuple[int, int]:
    """(attention heads, hidden size) of the transformer in ``folder``."""
    config = json.loads((folder / "config.json").read_text())
    return int(config["num_attention_heads"]), int(config["hidden_size"])


def _optimize(plain: Path, out: Path, folder: Path) -> None:
    """Fuses attention / layer norm / GELU of ``plain`` into ``out`` (onnxruntime transformer optimizer)."""
    from onnxruntime.transformers.optimizer import optimize_model

    heads, hidden = _heads_and_hidden(folder)
    optimize_model(str(plain), model_type="bert", num_heads=heads, hidden_size=hidden,
                   opt_level=1).save_model_to_file(str(out))


def _quantize(fused: Path, out: Path) -> None:
    """int8 dynamic quantization of the MatMul weights of ``fused`` (per channel, signed weights).

    Only MatMul: quantizing the fused Attention and EmbedLayerNormalization too lowers the
    agreement with the float vectors further (measured in ``benchmarks/selection.py``).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fused), str(out), per_channel=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul"], extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _build(target: Path, make: Callable[[Path], None], meta: dict[str, Any]) -> None:
    """Runs ``make(tmp / "model.onnx")`` in a temp folder next to ``target``, adds the marker, renames."""
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        make(tmp / "model.onnx")
        (tmp / _MARKER).write_text(json.dumps({"format": _FORMAT, **meta}))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / _MARKER).is_file():  # a broken leftover, not a lost race
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def variant_dir(folder: str | Path, variant: str = "plain") -> Path:
    """Where the ``variant`` graph (see :data:`VARIANTS`) of the model in ``folder`` is kept."""
    base = export_dir(folder)
    return base if variant == "plain" else base.with_name(f"{base.name}-{variant}")


def _quiet_build(src: Path, variant: str) -> None:
    """Builds ``variant`` and whatever it is made from, with the libraries' warnings silenced."""
    digest = export_dir(src).name.rsplit("-", 1)[-1]
    makers: dict[str, Callable[[Path], None]] = {
        "plain": lambda out: _export(src, out),
        "opt": lambda out: _optimize(variant_dir(src, "plain") / "model.onnx", out, src),
        "int8": lambda out: _quantize(variant_dir(src, "opt") / "model.onnx", out),
    }
    chain = VARIANTS[:VARIANTS.index(variant) + 1]
    ort_log = logging.getLogger("onnxruntime")
    level = ort_log.level
    ort_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for step in chain:
                if not (variant_dir(src, step) / _MARKER).is_file():
                    _build(variant_dir(src, step), makers[step], {"source": str(src), "digest": digest,
                                                                  "variant": step})
    finally:
        ort_log.setLevel(level)


def ensure_export(folder: str | Path, variant: str = "plain") -> Path:
    """The ONNX file of ``variant`` of the model in ``folder``, built first when missing (~20-40 s, once).

    The first build prints one line to stderr.
    """
    if variant not in VARIANTS:
        raise ValueError(f"onnx variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    src = Path(folder)
    target = variant_dir(src, variant)
    if not (target / _MARKER).is_file():
        with _export_lock:
            if not (target / _MARKER).is_file():
                print("synthrun: preparing the embedding model for onnxruntime (one time, ~30 s)",
                      file=sys.stderr, flush=True)
                _quiet_build(src, variant)
    return target / "model.onnx"


class OnnxEncoder:
    """Mean-pooled, L2-normalised sentence vectors from an onnxruntime session.

    Args:
        folder: The sentence-transformers model folder (see :func:`supported`).
        threads: onnxruntime intra-op threads (default: all cores).
        variant: Which graph runs (:data:`VARIANTS`): ``opt`` (default, the fused float graph) or ``int8``.
    """

    def __init__(self, folder: str | Path, threads: int | None = None, variant: str = "opt"):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.variant = variant
        path = ensure_export(self.folder, variant)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        try:
            max_len = int(json.loads((self.folder / "sentence_bert_config.json").read_text())["max_seq_length"])
        except (OSError, ValueError, KeyError):
            max_len = 512
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_len)
        self._lock = threading.Lock()  # the tokenizer object is shared

    def encode(self, texts: list[str], batch_size: int = 64,
               progress: Callable[[Iterable[int], int], Iterable[int]] | None = None) -> np.ndarray:
        """One vector per text, in input order (batches are formed over length-sorted texts).

        ``progress(batches, total)`` (optional) wraps the iteration over the batches.
        """
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        size = max(1, batch_size)
        starts = range(0, len(order), size)
        out: np.ndarray | None = None
        for start in (progress(starts, len(starts)) if progress else starts):
            rows = order[start:start + size]
            vectors = self._run([ids[i] for i in rows])
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        assert out is not None
        return out

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        width = max(1, max(len(x) for x in batch))
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros_like(input_ids)
        for r, x in enumerate(batch):
            input_ids[r, :len(x)] = x
            mask[r, :len(x)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
        return unit
