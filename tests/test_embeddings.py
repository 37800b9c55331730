"""Embeddings: the packaged MiniLM model, offline, through the on-disk cache."""

import os

import numpy as np
import pytest

from synthrun.embeddings import (
    DEFAULT_MODEL,
    Embedder,
    EmbeddingCache,
    load_model,
    packaged_model_path,
    resolve_model,
    text_key,
)
from synthrun.stage import StageError

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def minilm():
    return load_model(resolve_model(DEFAULT_MODEL)[0])


def test_default_model_is_the_packaged_minilm():
    path = packaged_model_path()
    assert path is not None and (path / "model.safetensors").is_file()
    for name in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", str(path)):
        source, key = resolve_model(name)
        assert source == str(path) and key == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolve_model("some-org/other-model") == ("some-org/other-model", "some-org/other-model")


def test_real_embeddings_are_normalised_and_meaningful(minilm, tmp_path):
    emb = Embedder(cache_dir=tmp_path)
    v = emb.embed(["How do I reverse a list in Python?", "How can I reverse a Python list?",
                   "Why does bread dough not rise?"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > 0.9 > 0.5 > v[0] @ v[2]


def test_cache_is_reused_across_embedders_and_equal_texts_embed_once(minilm, tmp_path):
    texts = ["alpha particles", "beta decay", "alpha particles", "gamma rays"]
    first = Embedder(cache_dir=tmp_path)
    a = first.embed(texts)
    assert (first.hits, first.misses) == (0, 3)
    assert np.array_equal(a[0], a[2])
    second = Embedder(model="sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path)
    b = second.embed(texts + ["neutrinos"])
    assert (second.hits, second.misses) == (3, 1)
    assert np.array_equal(a, b[:4])
    cache = EmbeddingCache(tmp_path, second.model_key)
    assert len(cache) == 4 and cache.dim == 384


def test_cache_roundtrip_without_a_model(tmp_path):
    cache = EmbeddingCache(tmp_path, "toy-model")
    keys = [text_key(f"t{i}") for i in range(5)]
    vecs = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    cache.put(keys[:3], vecs[:3])
    cache.put(keys, vecs)  # the first three are already there and are not appended again
    assert (cache.vectors_path.stat().st_size // (8 * 4), len(cache)) == (5, 5)
    found, got = cache.get([keys[4], text_key("unknown"), keys[0]])
    assert found.tolist() == [True, False, True]
    assert np.array_equal(got[0], vecs[4]) and np.array_equal(got[2], vecs[0]) and not got[1].any()
    # a torn tail (crash mid-append) is overwritten by the next append
    with open(cache.vectors_path, "ab") as fh:
        fh.write(b"\x01\x02\x03")
    cache.put([text_key("new")], vecs[:1] * 2)
    found, got = cache.get([text_key("new"), keys[1]])
    assert found.all() and np.array_equal(got[0], vecs[0] * 2) and np.array_equal(got[1], vecs[1])
    with pytest.raises(StageError, match="holds 8-d vectors"):
        cache.put([text_key("x")], np.zeros((1, 4), dtype=np.float32))


def test_unknown_model_fails_with_one_clear_line(tmp_path):
    with pytest.raises(StageError, match="could not be loaded offline"):
        Embedder(model="no-such-org/no-such-model-xyz", cache_dir=tmp_path).embed(["hello"])


def test_a_truncated_vectors_file_is_reported(tmp_path):
    cache = EmbeddingCache(tmp_path, "toy-model")
    keys = [text_key(f"t{i}") for i in range(3)]
    cache.put(keys, np.ones((3, 4), dtype=np.float32))
    with open(cache.vectors_path, "r+b") as fh:
        fh.truncate(4 * 4)
    with pytest.raises(StageError, match="shorter than its index"):
        cache.get(keys)


SENTENCES = [
    "How do I reverse a list in Python?",
    "Chunked storage splits a dataset into regular blocks stored separately in the file.",
    "Why does bread dough not rise?",
    "x",
    "Attributes are small named pieces of data attached to groups and datasets. " * 30,  # > 256 tokens: truncated
    "The Eiffel Tower was built in 1889 for the World's Fair in Paris.",
]


def test_onnx_route_gives_the_torch_vectors_in_input_order(minilm, tmp_path):
    from synthrun.embeddings_onnx import export_dir

    source = resolve_model(DEFAULT_MODEL)[0]
    fast = Embedder(backend="onnx", batch_size=2)
    slow = Embedder(backend="torch")
    assert fast.backend == "onnx" and slow.backend == "torch"
    a, b = fast.embed(SENTENCES), slow.embed(SENTENCES)
    assert fast.backend == "onnx"  # no silent fallback
    assert (export_dir(source) / "model.onnx").is_file()
    assert a.shape == b.shape == (len(SENTENCES), 384)
    cos = (a * b).sum(axis=1)
    assert cos.min() > 0.9999, cos
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_backend_choice_and_fallback(tmp_path, monkeypatch):
    from synthrun.embeddings import embed_backend

    source = resolve_model(DEFAULT_MODEL)[0]
    assert embed_backend(source, "torch") == "torch"
    assert embed_backend(source, "auto") == "onnx-int8"
    assert embed_backend(source, "onnx") == "onnx"
    assert embed_backend(source, "auto", prefer_int8=False) == "onnx"  # tool matching's float vectors
    (tmp_path / "modules.json").write_text('[{"type": "sentence_transformers.models.Transformer"}]')
    assert embed_backend(str(tmp_path), "onnx") == "torch"  # not a mean-pooling model folder
    assert embed_backend("some-org/other-model", "auto") == "torch"
    monkeypatch.setenv("SYNTHRUN_EMBED_BACKEND", "torch")
    assert embed_backend(source) == "torch"
    monkeypatch.setenv("SYNTHRUN_EMBED_BACKEND", "tensorflow")
    with pytest.raises(StageError, match="auto, onnx, onnx-int8, torch"):
        embed_backend(source)


@pytest.mark.slow
def test_fused_and_int8_graphs_are_built_once_and_reused(minilm, monkeypatch):
    import json

    from synthrun import embeddings_onnx as eo

    source = resolve_model(DEFAULT_MODEL)[0]
    path = eo.ensure_export(source, "int8")  # builds plain -> opt -> int8 when missing
    digest = eo.export_dir(source).name.rsplit("-", 1)[-1]
    for variant in ("opt", "int8"):
        marker = json.loads((eo.variant_dir(source, variant) / "synthrun_onnx.json").read_text())
        assert marker["variant"] == variant and marker["digest"] == digest
        assert (eo.variant_dir(source, variant) / "model.onnx").is_file()
    assert path.parent == eo.variant_dir(source, "int8") and (eo.export_dir(source) / "model.onnx").is_file()
    assert path.stat().st_size < 0.8 * (eo.variant_dir(source, "opt") / "model.onnx").stat().st_size  # int8 MatMuls

    def no_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt a cached graph")

    monkeypatch.setattr(eo, "_build", no_rebuild)
    second = eo.OnnxEncoder(source, variant="int8")  # a second encoder reuses the cached file
    assert second.variant == "int8" and second.encode(["reused"]).shape == (1, 384)


@pytest.mark.slow
def test_int8_route_agrees_with_torch_and_is_cached_apart(minilm, tmp_path):
    fast = Embedder(backend="onnx-int8", cache_dir=tmp_path)
    float_ = Embedder(backend="onnx", cache_dir=tmp_path)
    assert fast.model_key == float_.model_key + "#int8" and fast.cache.dir != float_.cache.dir
    a = fast.embed(SENTENCES)
    b = Embedder(backend="torch").embed(SENTENCES)
    c = float_.embed(SENTENCES)
    assert fast.backend == "onnx-int8" and float_.backend == "onnx"  # no silent fallback
    assert (float_.hits, float_.misses) == (0, len(SENTENCES))  # int8 vectors never serve the float route
    cos = (a * b).sum(axis=1)
    assert cos.min() > 0.97, cos  # measured ~0.98 min / 0.99 mean on 1k real texts
    assert (c * b).sum(axis=1).min() > 0.9999
    sims_int8, sims_torch = a @ a.T, b @ b.T
    assert np.abs(sims_int8 - sims_torch).max() < 0.05


def test_onnx_build_failure_leaves_no_marker_or_temp_folder(tmp_path):
    from synthrun.embeddings_onnx import _build

    def broken(out):
        out.write_bytes(b"half a graph")
        raise RuntimeError("export crashed")

    with pytest.raises(RuntimeError, match="export crashed"):
        _build(tmp_path / "embed-onnx-x-opt", broken, {"variant": "opt"})
    assert list(tmp_path.iterdir()) == []
    _build(tmp_path / "embed-onnx-x-opt", lambda out: out.write_bytes(b"graph"), {"variant": "opt", "digest": "x"})
    assert sorted(p.name for p in (tmp_path / "embed-onnx-x-opt").iterdir()) == ["model.onnx", "synthrun_onnx.json"]


def test_route_knob_env_and_int8(monkeypatch):
    from synthrun.embeddings import embed_backend

    source = resolve_model(DEFAULT_MODEL)[0]
    assert embed_backend(source, "onnx-int8") == "onnx-int8"
    assert embed_backend(source, "ONNX") == "onnx"
    monkeypatch.setenv("SYNTHRUN_EMBED_BACKEND", "onnx-int8")
    assert embed_backend(source) == "onnx-int8" and embed_backend(source, "torch") == "torch"
    assert embed_backend("some-org/other-model") == "torch"
