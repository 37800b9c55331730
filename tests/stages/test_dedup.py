"""Dedup: exact, MinHash LSH and embedding near-duplicates, keeping the best-rated member."""

import json
import os

import numpy as np
import pytest
from datasketch import MinHash

from synthrun.context import StageContext
from synthrun.embeddings import DEFAULT_MODEL, Embedder, EmbeddingCache, load_model, resolve_model, text_key
from synthrun.records import QAPair, Record
from synthrun.stages.dedup import (
    Dedup,
    embedding_pairs,
    minhash_signatures,
    normalize,
    shingle_hashes,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def minilm():
    return load_model(resolve_model(DEFAULT_MODEL)[0])


def _ctx(tmp_path):
    return StageContext(name="dedup", run_id="t", run_dir=tmp_path, stage_dir=tmp_path, show_progress=False)


def _rec(i, question, total=None, **extra):
    data = {"id": f"r{i}", "question": question, "answer": f"answer {i}", **extra}
    if total is not None:
        data["rating"] = {"total": total}
    return Record.model_validate(data)


DISTINCT = [
    "How do I reverse a list in Python?",
    "What does the yield keyword do in a Python function?",
    "Why does my bread dough not rise in a cold kitchen?",
    "How long should I knead bread dough by hand?",
    "What causes the phases of the Moon?",
    "Why do stars twinkle but planets mostly do not?",
    "What is compound interest and how is it computed?",
    "How large should an emergency fund be?",
]


def test_numpy_minhash_equals_datasketch():
    texts = ["the quick brown fox jumps over the lazy dog", "ab", "", "naïve café ünïcödé text 🙂", "x" * 40]
    hashes, offsets = shingle_hashes([normalize(t) for t in texts], ngram=5)
    sig = minhash_signatures(hashes, offsets, num_perm=64, chunk=7)  # tiny chunks cross text boundaries
    for i in range(len(texts)):
        m = MinHash(num_perm=64, seed=1, scheme="affine32", hashfunc=lambda v: v)
        m.update_batch([int(h) for h in hashes[offsets[i]:offsets[i + 1]]])
        assert np.array_equal(m.hashvalues, sig[i]), texts[i]
    assert offsets[2] - offsets[1] == 1, "a text shorter than the n-gram is one n-gram"
    assert offsets[-1] - offsets[-2] == 36


def test_exact_and_near_duplicates_removed_best_rated_kept(tmp_path):
    records = [_rec(i, q, total=5) for i, q in enumerate(DISTINCT)]
    records += [
        _rec(10, "how do I REVERSE a list in python", total=8),           # exact after normalising, better
        _rec(11, "What does the yield keyword do in a Python functions?", total=3),   # near (one edit), worse
        _rec(12, "What causes the phases of the moon??", total=None),   # exact, unrated
        _rec(13, "Why do stars twinkle, but planets mostly don't?", total=9),  # near, better
    ]
    ctx = _ctx(tmp_path)
    out = Dedup().run(records, ctx)
    by_id = {r.id: r for r in out}
    assert sorted(by_id) == sorted(["r10", "r1", "r2", "r3", "r4", "r13", "r6", "r7"])
    assert by_id["r10"].absorbed_ids == ["r0"]
    assert by_id["r1"].absorbed_ids == ["r11"]
    assert by_id["r4"].absorbed_ids == ["r12"]
    assert by_id["r13"].absorbed_ids == ["r5"]
    assert not hasattr(by_id["r2"], "absorbed_ids")
    assert [r.id for r in out] == ["r1", "r2", "r3", "r4", "r6", "r7", "r10", "r13"], "input order kept"
    assert ctx.summary["removed"] == 4 and ctx.failures == {"duplicate": 4}
    assert ctx.summary["keep_by"] == "rating.total"
    groups = [json.loads(x) for x in (tmp_path / "duplicate_groups.jsonl").read_text().splitlines()]
    assert {"kept": "r13", "absorbed": ["r5"]} in groups and len(groups) == 4


def test_real_embeddings_catch_paraphrases_and_keep_distinct_items(minilm, tmp_path):
    records = [_rec(i, q, total=5) for i, q in enumerate(DISTINCT)]
    paraphrases = {
        "How can I reverse a Python list?": "r0",
        "For how long do I need to knead bread dough by hand?": "r3",
        "Why does the Moon have phases?": "r4",
    }
    records += [_rec(20 + j, q, total=2) for j, q in enumerate(paraphrases)]
    text_only = Dedup().run(records, _ctx(tmp_path))
    assert len(text_only) == len(records), "paraphrases are not near-duplicate texts"
    ctx = _ctx(tmp_path)
    out = Dedup(embedding_threshold=0.9, cache_dir=str(tmp_path / "emb")).run(records, ctx)
    assert [r.id for r in out] == [f"r{i}" for i in range(len(DISTINCT))], "every distinct question kept"
    absorbed = {r.id: r.absorbed_ids for r in out if getattr(r, "absorbed_ids", None)}
    assert absorbed == {"r0": ["r20"], "r3": ["r21"], "r4": ["r22"]}
    assert ctx.summary["embeddings"]["embedded"] == len(records)
    ctx2 = _ctx(tmp_path)
    Dedup(embedding_threshold=0.9, cache_dir=str(tmp_path / "emb")).run(records, ctx2)
    assert ctx2.summary["embeddings"] == {"model": Embedder().model_key,
                                          "cache_hits": len(records), "embedded": 0}


def test_keep_by_a_custom_field_and_chained_absorbed_ids(tmp_path):
    records = [
        QAPair(id="a", question="What is HDF5 used for in science?", answer="x"),
        QAPair(id="b", question="What is HDF5 used for in science ?", answer="y"),
        QAPair(id="c", question="What is HDF5 used for in sciences?", answer="z"),
    ]
    records = [r.model_copy(update={"votes": v}) for r, v in zip(records, [1, 7, 3], strict=True)]
    records[2] = records[2].model_copy(update={"absorbed_ids": ["old"]})
    (kept,) = Dedup(keep_by="votes").run(records, _ctx(tmp_path))
    assert kept.id == "b" and kept.absorbed_ids == ["a", "c", "old"]
    assert isinstance(kept, QAPair) and kept.answer == "y"


def test_whole_example_fields_and_empty_texts(tmp_path):
    records = [
        _rec(0, "Same question?", answer_text="A long and careful answer."),
        _rec(1, "Same question?", answer_text="Something else entirely."),
        Record(id="e1"), Record(id="e2"),
    ]
    out = Dedup(text_field=["question", "answer_text"]).run(records, _ctx(tmp_path))
    assert [r.id for r in out] == ["r0", "r1", "e1", "e2"]
    out = Dedup().run(records, _ctx(tmp_path))
    assert [r.id for r in out] == ["r0", "e1", "e2"]


def test_embedding_pairs_across_kmeans_groups():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3000, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    dups = base[:300] + 0.05 * rng.normal(size=(300, 32)).astype(np.float32)
    dups /= np.linalg.norm(dups, axis=1, keepdims=True)
    vectors = np.vstack([base, dups])
    pairs = embedding_pairs(vectors, threshold=0.9, group_size=500)
    planted = {(i, 3000 + i) for i in range(300)}
    found = {tuple(p) for p in pairs.tolist()}
    assert len(found & planted) >= 297 and len(found - planted) <= 3


def test_cached_embeddings_are_used_without_the_model(tmp_path, monkeypatch):
    texts = DISTINCT + ["What is compound interest, and how do you compute it?"]
    cache = EmbeddingCache(tmp_path / "emb", Embedder().model_key)
    vectors = np.eye(len(texts), 16, dtype=np.float32)
    vectors[-1] = vectors[6]  # planted: same vector as text 6
    cache.put([text_key(t) for t in texts], vectors)
    import synthrun.embeddings as emb

    monkeypatch.setattr(emb, "load_model", lambda *a, **k: pytest.fail("model loaded despite the cache"))
    monkeypatch.setattr(emb, "load_onnx", lambda *a, **k: pytest.fail("model loaded despite the cache"))
    out = Dedup(minhash=False, embedding_threshold=0.99, cache_dir=str(tmp_path / "emb")).run(
        [_rec(i, t) for i, t in enumerate(texts)], _ctx(tmp_path))
    assert [r.id for r in out] == [f"r{i}" for i in range(len(DISTINCT))] and out[6].absorbed_ids == ["r8"]


class _Passes:
    """A re-iterable record stream that counts how often it is read (as the runner's RecordStream is)."""

    def __init__(self, path):
        self.path, self.reads = path, 0

    def __iter__(self):
        self.reads += 1
        for line in self.path.read_text().splitlines():
            yield Record.model_validate_json(line)


def test_dedup_on_a_record_file_stream_gives_what_it_gives_on_a_list(tmp_path):
    from synthrun.recordfile import RecordFile, RecordStream

    rows = [_rec(i, q, total=5) for i, q in enumerate(DISTINCT)]
    rows += [_rec(10, "how do I REVERSE a list in python", total=8),
             _rec(11, "What does the yield keyword do in a Python functions?", total=3),
             _rec(12, "What causes the phases of the moon??"), Record(id="e1"),
             _rec(13, "Why do stars twinkle, but planets mostly don't?", total=9, absorbed_ids=["old"])]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in rows))
    (tmp_path / "list").mkdir()
    (tmp_path / "stream").mkdir()
    stage = Dedup()
    ctx_list = StageContext(name="dedup", run_id="t", run_dir=tmp_path, stage_dir=tmp_path / "list")
    as_list = stage.run(list(rows), ctx_list)
    ctx_stream = StageContext(name="dedup", run_id="t", run_dir=tmp_path, stage_dir=tmp_path / "stream")
    stream = _Passes(path)
    out = stage.run(stream, ctx_stream)
    assert not isinstance(out, list), "a stream in, a stream out: the kept records are not held"
    streamed = list(out)
    assert stream.reads == 3, "pass 1 keys, pass 2 group members, pass 3 the kept records"
    assert [r.model_dump() for r in streamed] == [r.model_dump() for r in as_list]
    assert [r.id for r in streamed] == ["r1", "r2", "r3", "r4", "r6", "r7", "r10", "e1", "r13"]
    assert {r.id: r.absorbed_ids for r in streamed if getattr(r, "absorbed_ids", None)} == {
        "r10": ["r0"], "r1": ["r11"], "r4": ["r12"], "r13": ["old", "r5"]}
    assert ctx_stream.failures == ctx_list.failures == {"duplicate": 4}
    drop = ("timings",)
    assert {k: v for k, v in ctx_stream.summary.items() if k not in drop} == \
        {k: v for k, v in ctx_list.summary.items() if k not in drop}
    assert (tmp_path / "stream" / "duplicate_groups.jsonl").read_text() == \
        (tmp_path / "list" / "duplicate_groups.jsonl").read_text()
    via_runner = list(stage.run(RecordStream(RecordFile(path), stage, "dedup", "load"), _ctx(tmp_path)))
    assert [r.model_dump() for r in via_runner] == [r.model_dump() for r in as_list]
