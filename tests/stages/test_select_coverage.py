"""SelectCoverage: cluster real MiniLM embeddings and pick across every topic."""

import os

import numpy as np
import pytest
from pydantic import ValidationError

from synthrun.context import StageContext
from synthrun.embeddings import DEFAULT_MODEL, Embedder, EmbeddingCache, load_model, resolve_model, text_key
from synthrun.records import Record
from synthrun.stages.select_coverage import SelectCoverage, allocate, farthest_first

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TOPICS = {
    "python": ["How do I reverse a list in Python?", "What does the yield keyword do in Python?",
               "How do I read a CSV file with pandas?", "How do I catch an exception in Python?",
               "How do I install a package with pip?"],
    "baking": ["Why does my bread dough not rise?", "How long should I knead bread dough?",
               "Can I replace butter with oil in a cake?", "How do I make a sourdough starter?",
               "Why did my cookies spread flat in the oven?"],
    "astronomy": ["Why do stars twinkle?", "What causes the phases of the Moon?",
                  "How far is the Sun from Earth?", "What is a light-year?", "Why is Mars red?"],
    "finance": ["What is compound interest?", "How big should an emergency fund be?",
                "Should I pay off debt or invest first?", "What is an index fund?",
                "How does a mortgage interest rate work?"],
}


@pytest.fixture(scope="module")
def minilm():
    return load_model(resolve_model(DEFAULT_MODEL)[0])


def _ctx(tmp_path):
    return StageContext(name="select", run_id="t", run_dir=tmp_path, stage_dir=tmp_path, show_progress=False)


def _records(shape="qa"):
    out = []
    for topic, questions in TOPICS.items():
        for q in questions:
            i = len(out)
            if shape == "chat":
                out.append(Record.model_validate({"id": f"{topic}-{i}", "topic": topic, "messages": [
                    {"role": "system", "content": "You are helpful."}, {"role": "user", "content": q},
                    {"role": "assistant", "content": "..."}]}))
            else:
                out.append(Record.model_validate({"id": f"{topic}-{i}", "topic": topic, "question": q, "answer": "."}))
    # interleave topics so that input order says nothing about the topic
    return [out[j] for j in np.random.default_rng(1).permutation(len(out))]


@pytest.mark.parametrize("strategy", ["centroid", "diverse"])
def test_k_from_separated_topics_covers_every_topic(minilm, tmp_path, strategy):
    records = _records()
    ctx = _ctx(tmp_path)
    out = SelectCoverage(target_count=4, strategy=strategy, cache_dir=str(tmp_path / "emb")).run(records, ctx)
    assert sorted(r.topic for r in out) == sorted(TOPICS)
    assert [r.original_index for r in out] == sorted(r.original_index for r in out)
    for r in out:
        assert records[r.original_index].id == r.id
    assert len({r.cluster_id for r in out}) == 4
    assert ctx.summary["clusters_covered"] == 4 and ctx.failures == {"not_selected_coverage": 16}


def test_ratio_and_fewer_clusters_than_picks(minilm, tmp_path):
    records = _records("chat")
    out = SelectCoverage(reduction_ratio=0.4, n_clusters=4, strategy="diverse", text_field="messages.user",
                         cache_dir=str(tmp_path / "emb")).run(records, _ctx(tmp_path))
    assert len(out) == 8
    topics = [r.topic for r in out]
    assert all(topics.count(t) == 2 for t in TOPICS), topics
    clusters: dict[int, set[str]] = {}
    for r in out:
        clusters.setdefault(r.cluster_id, set()).add(r.topic)
    assert len(clusters) == 4 and all(len(t) == 1 for t in clusters.values()), "one cluster per topic"


def test_allocate_covers_every_cluster_then_follows_size():
    assert allocate(np.array([50, 30, 20]), 10).tolist() == [5, 3, 2]
    assert allocate(np.array([100, 1, 1, 0]), 5).tolist() == [3, 1, 1, 0]
    assert allocate(np.array([5, 9, 2]), 2).tolist() == [1, 1, 0]
    assert allocate(np.array([2, 2]), 10).tolist() == [2, 2]
    q = allocate(np.array([7, 13, 1, 29, 50]), 33)
    assert q.sum() == 33 and (q >= 1).all() and (q <= [7, 13, 1, 29, 50]).all()


def test_farthest_first_spreads_out():
    pts = np.array([[1, 0], [0.99, 0.141], [0, 1], [-1, 0], [0.98, 0.199]], dtype=np.float32)
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    assert farthest_first(pts, 3, start=0) == [0, 3, 2]


def test_parameters_are_checked():
    with pytest.raises(ValidationError, match="exactly one of target_count and reduction_ratio"):
        SelectCoverage()
    with pytest.raises(ValidationError, match="exactly one"):
        SelectCoverage(target_count=3, reduction_ratio=0.5)
    with pytest.raises(ValidationError):
        SelectCoverage(reduction_ratio=1.5)


def test_large_set_from_cached_vectors_uses_minibatch_kmeans(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n, groups = 2600, 13
    centres = rng.normal(size=(groups, 24))
    topic = np.arange(n) % groups
    vectors = (centres[topic] + 0.3 * rng.normal(size=(n, 24))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"synthetic text {i}" for i in range(n)]
    EmbeddingCache(tmp_path / "emb", Embedder().model_key).put([text_key(t) for t in texts], vectors)
    import synthrun.embeddings as emb

    monkeypatch.setattr(emb, "load_model", lambda *a, **k: pytest.fail("model loaded despite the cache"))
    monkeypatch.setattr(emb, "load_onnx", lambda *a, **k: pytest.fail("model loaded despite the cache"))
    records = [Record.model_validate({"id": str(i), "text": t, "topic": int(topic[i])}) for i, t in enumerate(texts)]
    ctx = _ctx(tmp_path)
    out = SelectCoverage(target_count=26, n_clusters=13, cache_dir=str(tmp_path / "emb")).run(records, ctx)
    assert len(out) == 26
    assert sorted({r.topic for r in out}) == list(range(groups))
    assert ctx.summary["embeddings"] == {"model": Embedder().model_key,
                                         "cache_hits": n, "embedded": 0}


def test_select_recipe_end_to_end(minilm, tmp_path):
    """recipes/select.yaml: load -> dedup -> score -> select -> export on the example dataset."""
    import json
    from pathlib import Path

    from synthrun.api import run_recipe

    data = Path(__file__).resolve().parents[1] / "data" / "select" / "examples.jsonl"
    run = run_recipe("select", [f"load.path={data}", "progress=false", "select.reduction_ratio=0.5"],
                     output_root=tmp_path / "out")
    names = sorted(p.name for p in run.iterdir() if p.is_dir() and p.name[:2].isdigit())
    assert names == ["01_load", "02_dedup", "03_score", "04_select", "05_export"]
    dedup = json.loads((run / "02_dedup" / "summary.json").read_text())["details"]
    assert dedup["input"] == 21 and dedup["removed"] >= 2
    rows = [json.loads(x) for x in (run / "04_select" / "data.jsonl").read_text().splitlines()]
    ids = {r["id"] for r in rows}
    assert not ids & {"py-1-dup", "bake-2-dup", "py-4", "astro-4", "fin-4"}
    assert all("multi_score" in r and "cluster_id" in r and "original_index" in r for r in rows)
    exported = list((run / "05_export" / "dataset").glob("*.jsonl"))
    assert len(exported) == 1 and len(exported[0].read_text().splitlines()) == len(rows)
    select = json.loads((run / "04_select" / "summary.json").read_text())["details"]
    assert select["embeddings"]["embedded"] == 0, "select reuses the embeddings dedup cached"
