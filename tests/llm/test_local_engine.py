"""The embedded SmolLM2 engine on the real model: constrained JSON, determinism, batching, caching."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import pytest
from pydantic import BaseModel, Field

from synthrun.llm.local_engine import (
    GenResult,
    LocalEngine,
    _write_cache,
    compute_dtype_name,
    default_gguf_path,
    load_model,
    load_weights,
)

slow = pytest.mark.slow  # every test that runs the real model

PASSAGES = [
    "HDF5 groups are folder-like containers that hold datasets and other groups.",
    "Chunked storage splits a dataset into regular blocks stored separately in the file.",
    "Attributes are small named pieces of data attached to groups and datasets.",
    "A LanceDB table stores vectors next to the rows they describe.",
]


class QAPair(BaseModel):
    question: str = Field(max_length=120)
    answer: str
    tags: list[str] = []
    difficulty: int = Field(ge=1, le=5)
    note: str | None = None


class Rating(BaseModel):
    rating: int = Field(ge=0, le=3)
    reason: str


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine.get()


def qa_messages(text: str) -> list[dict]:
    return [
        {"role": "system", "content": "You write quiz questions. Answer in JSON."},
        {"role": "user", "content": f"Write one question and its answer about: {text}"},
    ]


def rating_messages(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": f"Rate this answer from 0 to 3.\nQuestion: {question}\nAnswer: {answer}"}]


@slow
def test_qa_schema_always_valid(engine):
    schema = QAPair.model_json_schema()
    results = engine.generate_many(
        [dict(messages=qa_messages(p), json_schema=schema, max_tokens=60, temperature=1.0, seed=i)
         for i, p in enumerate(PASSAGES)]
    )
    assert len(results) == len(PASSAGES)
    for r in results:
        assert isinstance(r, GenResult)
        pair = QAPair.model_validate_json(r.text)
        assert 1 <= pair.difficulty <= 5 and len(pair.question) <= 120
        assert 0 < r.completion_tokens <= 60 and r.prompt_tokens > 10
        assert r.finish_reason == "stop"


@slow
def test_rating_schema_respects_integer_bounds(engine):
    schema = Rating.model_json_schema()
    pairs = [("What is 2+2?", "4"), ("Capital of France?", "Berlin"), ("What is HDF5?", "A file format"),
             ("Who wrote Hamlet?", "Shakespeare"), ("Boiling point of water?", "100 C at sea level")]
    results = engine.generate_many(
        [dict(messages=rating_messages(q, a), json_schema=schema, max_tokens=40, temperature=1.2, seed=7 + i)
         for i, (q, a) in enumerate(pairs)]
    )
    for r in results:
        rating = Rating.model_validate_json(r.text)
        assert 0 <= rating.rating <= 3


@slow
def test_tiny_budget_still_closes_the_json(engine):
    schema = QAPair.model_json_schema()
    compiled = engine.constraints.get(schema)
    budget = compiled.min_tokens + 4
    r = engine.generate(qa_messages(PASSAGES[0]), json_schema=schema, max_tokens=budget, temperature=1.0, seed=3)
    QAPair.model_validate_json(r.text)
    assert r.completion_tokens <= budget
    assert r.closed_early and r.finish_reason == "stop"


@slow
def test_greedy_and_seeded_runs_repeat(engine):
    msgs = qa_messages(PASSAGES[1])
    first = engine.generate(msgs, max_tokens=12, temperature=0)
    assert first.text and engine.generate(msgs, max_tokens=12, temperature=0).text == first.text
    a = engine.generate(msgs, max_tokens=12, temperature=1.0, seed=11)
    b = engine.generate(msgs, max_tokens=12, temperature=1.0, seed=11)
    assert a.text == b.text
    others = engine.generate_many([dict(messages=msgs, max_tokens=12, temperature=1.0, seed=s) for s in (1, 2, 3)])
    assert len({r.text for r in others} | {a.text}) > 1, "different seeds should not all give the same sample"


@slow
def test_batched_rows_match_lone_runs(engine):
    if engine.load_info["dtype"] != "float32":
        pytest.skip("only float32 decoding is batch-invariant")
    reqs = [dict(messages=qa_messages(p), max_tokens=16, temperature=0.8, seed=i) for i, p in enumerate(PASSAGES[:3])]
    alone = [engine.generate(**r).text for r in reqs]
    assert [r.text for r in engine.generate_many(reqs)] == alone


@slow
def test_free_text_stops_at_budget_or_stop_string(engine):
    msgs = [{"role": "user", "content": "Write a long story about a dragon."}]
    r = engine.generate(msgs, max_tokens=5, temperature=0)
    assert r.finish_reason == "length" and r.completion_tokens == 5
    full = engine.generate(msgs, max_tokens=30, temperature=0)
    word = full.text.split()[3]
    cut = engine.generate(msgs, max_tokens=30, temperature=0, stop=[word])
    assert cut.finish_reason == "stop" and word not in cut.text and full.text.startswith(cut.text)


@slow
def test_concurrent_agenerate_is_batched(engine):
    schema = Rating.model_json_schema()
    engine.stats["peak_batch"] = 0  # a running maximum: earlier tests in this process already raised it
    before = dict(engine.stats)

    async def many():
        return await asyncio.gather(*[
            engine.agenerate(rating_messages("What is HDF5?", a), json_schema=schema, max_tokens=30,
                             temperature=0.7, seed=i)
            for i, a in enumerate(["A file format", "A fish", "A container for arrays", "A car"])
        ])

    results = asyncio.run(many())
    assert [0 <= Rating.model_validate_json(r.text).rating <= 3 for r in results] == [True] * 4
    assert engine.stats["requests"] - before["requests"] == 4
    assert engine.stats["peak_batch"] >= 2, "concurrent requests should share decode steps"


@slow
def test_prompt_longer_than_context_is_refused(engine):
    with pytest.raises(ValueError, match="context"):
        engine.generate([{"role": "user", "content": "word " * 9000}], max_tokens=10)
    with pytest.raises(ValueError, match="messages is empty"):
        engine.generate([], max_tokens=10)


@slow
def test_model_cache_roundtrip(engine, tmp_path, monkeypatch):
    """The de-quantized cache is written atomically and reloads to the same weights."""
    import torch

    monkeypatch.setenv("SYNTHRUN_MODEL_CACHE", str(tmp_path))
    target = tmp_path / "abc"
    (target).mkdir()  # a broken leftover without the completion marker
    (target / "junk").write_text("partial")
    _write_cache(engine.model, engine.tokenizer, target, engine.gguf_path)
    assert (target / "synthrun_cache.json").is_file() and not (target / "junk").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp-", ".stale-"))]

    from synthrun.llm import local_weights

    monkeypatch.setattr(local_weights, "file_digest", lambda path: "abc")
    model, tokenizer, info = load_model(engine.gguf_path)
    assert info["source"] == "cache"
    assert torch.equal(model.model.embed_tokens.weight, engine.model.model.embed_tokens.weight)
    assert json.loads((target / "synthrun_cache.json").read_text())["format"] == 1
    weights = load_weights(engine.gguf_path)  # what the engine reads: tensors by name, no model built
    assert weights.info["source"] == "cache" and weights.model is None and weights.folder == target
    assert weights.state.keys() == model.state_dict().keys() - {"lm_head.weight"}  # tied to the embeddings
    assert all(torch.equal(t, model.state_dict()[k]) for k, t in weights.state.items())
    assert weights.config == json.loads((target / "config.json").read_text())


@slow
def test_an_unreadable_cache_is_rebuilt_from_the_gguf(engine, tmp_path, monkeypatch):
    import torch

    from synthrun.llm import local_weights

    monkeypatch.setenv("SYNTHRUN_MODEL_CACHE", str(tmp_path))
    monkeypatch.setattr(local_weights, "file_digest", lambda path: "abc")
    _write_cache(engine.model, engine.tokenizer, tmp_path / "abc", engine.gguf_path)
    (tmp_path / "abc" / "model.safetensors").write_bytes(b"not safetensors")
    weights = load_weights(engine.gguf_path)
    assert weights.info["source"] == "gguf" and weights.model is not None
    assert torch.equal(weights.state["model.norm.weight"], engine.weights.state["model.norm.weight"])
    assert load_weights(engine.gguf_path).info["source"] == "cache"  # rebuilt


@slow
def test_an_import_error_is_not_taken_for_an_unreadable_cache(engine, tmp_path, monkeypatch):
    """A broken install fails loudly and leaves the cache alone (only unreadable files rebuild it)."""
    from synthrun.llm import local_weights

    monkeypatch.setenv("SYNTHRUN_MODEL_CACHE", str(tmp_path))
    monkeypatch.setattr(local_weights, "file_digest", lambda path: "abc")
    _write_cache(engine.model, engine.tokenizer, tmp_path / "abc", engine.gguf_path)
    files = sorted(p.name for p in (tmp_path / "abc").iterdir())
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)  # its import now raises ImportError
    with pytest.raises(ImportError):
        load_weights(engine.gguf_path)
    assert sorted(p.name for p in (tmp_path / "abc").iterdir()) == files


@slow
def test_the_engine_starts_without_building_a_transformers_model(engine):
    """The engine reads the cached tensors itself (transformers' model imports cost ~3 s); its
    ``model``, built on first use, computes what the fast path computes. Its counters say how long
    the load took."""
    import torch

    code = ("import sys; from synthrun.llm.local_engine import LocalEngine; e = LocalEngine.get(); "
            "e.generate([{'role': 'user', 'content': 'Hi'}], max_tokens=2); print(e.stats['load_seconds']); "
            "print(sorted(m for m in sys.modules if m.startswith('transformers.models.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
    assert 0.0 < float(out.strip().splitlines()[-2]) < 300
    ids, _ = engine.encode_prompt(qa_messages(PASSAGES[1]))
    with torch.inference_mode():
        fast = engine.fast
        logits, _ = fast.prefill(fast.new_cache(1), 0, ids, reuse=False)
        reference = engine.model(input_ids=torch.tensor([ids])).logits[0, -1]
    assert torch.allclose(logits, reference, atol=1e-3)


def test_frequency_penalty_curbs_repetition(engine):
    msgs = [{"role": "user", "content": "Repeat the word hello ten times: hello hello hello hello hello"}]
    plain = engine.generate(msgs, max_tokens=20, temperature=0)
    penalized = engine.generate(msgs, max_tokens=20, temperature=0, frequency_penalty=100.0)
    assert plain.text.lower().count("hello") >= 3
    assert penalized.text.lower().count("hello") < plain.text.lower().count("hello")


def test_dtype_choice_follows_env(monkeypatch):
    monkeypatch.delenv("SYNTHRUN_LOCAL_DTYPE", raising=False)
    assert compute_dtype_name() == "float32", "float32 by default: batched answers equal lone answers"
    monkeypatch.setenv("SYNTHRUN_LOCAL_DTYPE", "float32")
    assert compute_dtype_name() == "float32"
    monkeypatch.setenv("SYNTHRUN_LOCAL_DTYPE", "bf16")
    assert compute_dtype_name() == "bfloat16"
    monkeypatch.setenv("SYNTHRUN_LOCAL_DTYPE", "auto")
    assert compute_dtype_name() in ("float32", "bfloat16")
    monkeypatch.setenv("SYNTHRUN_LOCAL_DTYPE", "int4")
    with pytest.raises(ValueError, match="SYNTHRUN_LOCAL_DTYPE"):
        compute_dtype_name()


def test_gguf_ships_in_the_wheel():
    path = default_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    with path.open("rb") as fh:
        assert fh.read(4) == b"GGUF"


def test_frequency_and_presence_penalties_in_the_sampler():
    """No model needed: the penalty is subtracted per earlier occurrence (frequency) or once (presence)."""
    import torch

    from synthrun.llm.local_engine import _Batch, _Job, _Row

    batch = _Batch.__new__(_Batch)
    batch.torch = torch
    logits = torch.tensor([0.0, 0.0, 0.0, 5.0, 4.0])

    def pick(tokens, frequency=0.0, presence=0.0):
        job = _Job(prompt_ids=[1], max_tokens=8, temperature=0.0, top_p=1.0, top_k=0,
                   frequency_penalty=frequency, presence_penalty=presence, seed=0, constraint=None, stop=[])
        row = _Row(job, torch)
        row.tokens = tokens
        return batch._pick(row, logits)

    assert pick([3, 3]) == 3                   # no penalty: greedy keeps the best token
    assert pick([3, 3], frequency=0.6) == 4    # 5 - 0.6 * 2 = 3.8 < 4
    assert pick([3, 3], frequency=0.4) == 3    # 5 - 0.4 * 2 = 4.2 > 4
    assert pick([3], presence=1.5) == 4        # 5 - 1.5 = 3.5 < 4
    assert pick([3, 3, 3], presence=0.9) == 3  # presence does not grow with the count


def _fast_path(engine, route, monkeypatch):
    """The engine's own fast path ("packed": float32 through oneDNN), int8, or float32 through torch's BLAS."""
    import torch

    from synthrun.llm.llama_fast import FastLlama, PackedLinear

    if route == "packed":
        assert isinstance(engine.fast.lm_head, PackedLinear), "float32 projections go through oneDNN here"
        return engine.fast
    monkeypatch.setenv("SYNTHRUN_LOCAL_GEMM", "blas")
    fast = FastLlama(engine.weights.state, engine.weights.config, torch, quantize="int8" if route == "int8" else None)
    assert not isinstance(fast.lm_head, PackedLinear)
    return fast


@slow
@pytest.mark.parametrize("route", ["packed", "int8", "blas"])
def test_fast_path_prefix_reuse_and_batch_invariance(engine, route, monkeypatch):
    """A prompt's logits are the same whether its system prefix came from the prefix cache or not, and
    (oneDNN float32 and int8: bit for bit) a row decoded in a batch gets the logits it gets alone."""
    import torch

    ids, splits = engine.encode_prompt(qa_messages(PASSAGES[0]))
    other, other_splits = engine.encode_prompt(qa_messages(PASSAGES[2]))
    assert splits and 0 < splits[0] < len(ids) and ids[: splits[0]] == other[: splits[0]]
    with torch.inference_mode():
        fast = _fast_path(engine, route, monkeypatch)
        cache = fast.new_cache(3)
        computed, reused = fast.prefill(cache, 0, ids, splits, reuse=False)
        assert reused == 0
        fast.prefill(cache, 1, other, other_splits)  # stores the shared system prefix
        again, reused = fast.prefill(cache, 2, ids, splits)
        assert reused == splits[0] and torch.equal(again, computed)
        token = int(computed.argmax())
        batched = fast.decode(cache, [token, 5, token], [len(ids), len(other), len(ids)])
        alone = fast.decode(cache, [token], [len(ids)])
        if route != "blas":  # exact: a row's products do not depend on the other rows
            assert torch.equal(batched[0], batched[2]) and torch.equal(alone[0], batched[0])
        else:  # MKL's float32 products round slightly differently per batch shape
            assert torch.allclose(batched[0], batched[2], atol=1e-3) and torch.allclose(alone[0], batched[0], atol=1e-3)
        assert int(alone[0].argmax()) == int(batched[0].argmax())
        if route != "int8":  # the fast path computes what transformers computes (int8 answers differ)
            reference = engine.model(input_ids=torch.tensor([ids])).logits[0, -1]
            assert torch.allclose(computed, reference, atol=1e-3)


@slow
def test_a_passage_shared_past_the_system_prompt_is_prefilled_once(engine):
    """Prompts are cut every PREFIX_BLOCK tokens too: two questions on one passage share its blocks,
    and the shared blocks' numbers are the ones a prefill without the cache computes."""
    import torch

    from synthrun.llm.llama_fast import PREFIX_BLOCK

    passage = " ".join(PASSAGES * 4)
    first, first_splits = engine.encode_prompt(qa_messages(f"{passage} Question one: what is HDF5?"))
    second, second_splits = engine.encode_prompt(qa_messages(f"{passage} Question two: what is a chunk?"))
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
    assert shared >= second_splits[0] + 2 * PREFIX_BLOCK, "the test needs a long shared passage"
    with torch.inference_mode():
        fast = engine.fast
        cache = fast.new_cache(2)
        fast.prefill(cache, 0, first, first_splits)
        cached, reused = fast.prefill(cache, 1, second, second_splits)
        computed, none = fast.prefill(cache, 1, second, second_splits, reuse=False)
    assert none == 0 and reused == shared // PREFIX_BLOCK * PREFIX_BLOCK
    assert torch.equal(cached, computed)


@slow
@pytest.mark.parametrize("route", ["packed", "int8"])
@pytest.mark.parametrize("rows", [512, 64])
def test_prompts_prefilled_together_get_the_numbers_they_get_alone(engine, route, rows, monkeypatch):
    """prefill_many runs the prompts' segments through shared matrix products (in passes of up to
    PREFILL_ROWS rows; 64 forces a shared passage to be copied from a slot filled in an earlier pass):
    every prompt's logits and keys/values equal a lone prefill without any cache, bit for bit, and
    a passage shared by several prompts is computed once."""
    import torch

    from synthrun.llm import llama_fast

    monkeypatch.setattr(llama_fast, "PREFILL_ROWS", rows)
    passage = " ".join(PASSAGES * 4)
    prompts = [engine.encode_prompt(qa_messages(f"{passage} Question {q}")) for q in ("one?", "two, longer?", "3?")]
    prompts += [engine.encode_prompt(qa_messages(PASSAGES[3])), prompts[0]]
    shared = next(i for i, (a, b) in enumerate(zip(prompts[0][0], prompts[1][0], strict=False)) if a != b)
    with torch.inference_mode():
        fast = _fast_path(engine, route, monkeypatch)
        fast.prefix = llama_fast.PrefixCache()
        together = fast.new_cache(len(prompts))
        filled = fast.prefill_many(together, [(i, ids, splits) for i, (ids, splits) in enumerate(prompts)])
        alone = fast.new_cache(1)
        for i, (ids, splits) in enumerate(prompts):
            logits, none = fast.prefill(alone, 0, ids, splits, reuse=False)
            assert none == 0 and torch.equal(filled[i][0], logits)
            assert torch.equal(together.k[:, i, :, :len(ids)], alone.k[:, 0, :, :len(ids)])
            assert torch.equal(together.v[:, i, :, :len(ids)], alone.v[:, 0, :, :len(ids)])
    block = llama_fast.PREFIX_BLOCK
    ids, splits = prompts[0]
    last_cut = max(b for b in [*splits, *range(block, len(ids), block)] if 0 < b < len(ids))
    # the 2nd and 3rd share the passage's whole blocks, the 4th the system prompt; the repeat computes
    # only its last segment
    system = prompts[3][1][0]
    assert [r for _, r in filled] == [0, shared // block * block, shared // block * block, system, last_cut]


@slow
def test_a_prompt_whose_prefill_fails_fails_alone(engine, monkeypatch):
    """Requests that arrive together are prefilled together; when that fails they are retried one
    by one, so only the request that breaks it gets the error."""
    fast = engine.fast
    real = fast.prefill_many
    poison = engine.encode_prompt([{"role": "user", "content": "POISON"}])[0]

    def breaks_on_poison(cache, prompts, reuse=True):
        if any(ids == poison for _, ids, _ in prompts):
            raise RuntimeError("prefill failed")
        return real(cache, prompts, reuse=reuse)

    def recorded(cache, prompts, reuse=True):
        sizes.append(len(prompts))
        return breaks_on_poison(cache, prompts, reuse)

    sizes: list[int] = []
    monkeypatch.setattr(fast, "prefill_many", recorded)
    gate = threading.Event()
    busy = threading.Thread(target=engine.call, args=(lambda: gate.wait(30),))
    busy.start()  # holds the engine's thread while the three requests queue up
    texts = ["Say hi.", "POISON", "Say bye."]
    futures = [engine.submit([{"role": "user", "content": t}], max_tokens=3, temperature=0.0, seed=1) for t in texts]
    gate.set()
    busy.join()
    with pytest.raises(RuntimeError, match="prefill failed"):
        futures[1].result(timeout=120)
    assert all(f.result(timeout=120).completion_tokens > 0 for f in (futures[0], futures[2]))
    assert sizes[:4] == [3, 1, 1, 1]


def test_prompt_lookup_finds_the_latest_earlier_ngram():
    from synthrun.llm.local_batch import lookup

    assert lookup([1, 2, 3, 4, 5, 9, 1, 2, 3], 2) == [4, 5]
    assert lookup([1, 2, 3, 7, 1, 2, 3, 8, 1, 2, 3], 3) == [8, 1, 2]  # the latest occurrence wins
    assert lookup([5, 2, 3, 6, 2, 3], 4) == [6, 2, 3]  # falls back to the last 2 tokens
    assert lookup([1, 2, 3, 4], 3) == []


@slow
@pytest.mark.parametrize("route", ["packed", "int8", "blas"])
def test_multi_token_pass_equals_one_token_steps(engine, route, monkeypatch):
    """Feeding several tokens of a row in one pass gives the logits of one-token steps up to rounding
    (one attention call per row), and a row's logits never depend on what the other rows feed
    (oneDNN float32 and int8: bit for bit), so a seeded answer is the same in any batch."""
    import torch

    ids, _ = engine.encode_prompt(qa_messages(PASSAGES[0]))
    with torch.inference_mode():
        fast = _fast_path(engine, route, monkeypatch)
        cache = fast.new_cache(2)
        first, _ = fast.prefill(cache, 0, ids, reuse=False)
        fast.prefill(cache, 1, ids, reuse=False)
        feed = [int(first.argmax()), 5, 7]
        steps = [fast.decode(cache, [t], [len(ids) + j])[0] for j, t in enumerate(feed)]
        multi = fast.decode_multi(cache, [[9], feed], [len(ids), len(ids)])
        other = fast.decode_multi(cache, [[11, 12, 13, 14], feed], [len(ids), len(ids)])  # another batch-mate
        assert multi.shape[0] == 1 + len(feed)
        if route != "blas":  # row-independent products: the batch-mate changes nothing
            assert torch.equal(multi[1:], other[4:])
        for one, many in zip(steps, multi[1:], strict=True):
            assert torch.allclose(one, many, atol=1e-3) and int(one.argmax()) == int(many.argmax())
        lone = fast.decode(cache, [9], [len(ids)])  # a row feeding one token: a one-token step's call
        assert torch.equal(lone[0], multi[0]) if route != "blas" else torch.allclose(lone[0], multi[0], atol=1e-3)


@slow
@pytest.mark.parametrize("quantize", ["none", "int8"])
@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_guessed_and_forced_tokens_cut_passes_and_answers_repeat_in_any_batch(engine, temperature, quantize):
    """Prompt-lookup guesses and JSON jump-forward cut the number of passes. A wider pass computes a
    token's logits as a one-token step does up to rounding (float32 ~1e-6: the answers here are plain
    decoding's; int8's per-row activation scales round more and may flip a near tie), and a row's
    guesses depend only on its own tokens, so a seeded answer is the same batched, alone, in any order."""
    schema = QAPair.model_json_schema()
    reqs = [dict(messages=qa_messages(p), json_schema=schema, max_tokens=48, temperature=temperature, seed=i)
            for i, p in enumerate(PASSAGES[:3])]
    saved, saved_quantize = engine.draft_tokens, engine.quantize
    engine.configure(quantize=quantize)  # applied by the worker before the next request
    try:
        engine.draft_tokens = 0
        before = dict(engine.stats)
        plain = [r.text for r in engine.generate_many(reqs)]
        plain_steps = engine.stats["decode_steps"] - before["decode_steps"]
        engine.draft_tokens = 4
        before = dict(engine.stats)
        guessed = [r.text for r in engine.generate_many(reqs)]
        steps = engine.stats["decode_steps"] - before["decode_steps"]
        accepted = engine.stats["draft_accepted"] - before["draft_accepted"]
        alone = [engine.generate(**r).text for r in reqs]
        reordered = [r.text for r in engine.generate_many(reqs[::-1])][::-1]
    finally:
        engine.draft_tokens = saved
        engine.configure(quantize=saved_quantize or "none")
    assert guessed == alone == reordered
    if quantize == "none":
        assert guessed == plain
    assert all(QAPair.model_validate_json(t) for t in guessed)
    assert engine.stats["forced_tokens"] > 0
    if temperature == 0.0:  # greedy answers copy the passage: some guesses hold, so fewer passes
        assert accepted > 0 and steps < plain_steps


@slow
def test_first_load_says_one_line_and_draws_no_bars(engine, caplog, capfd):
    """De-quantizing the GGUF (first use) logs one progress line and prints no tqdm bars."""
    import logging

    with caplog.at_level(logging.INFO):
        load_model(engine.gguf_path, use_cache=False)
    lines = [r.getMessage() for r in caplog.records if "preparing the embedded model" in r.getMessage()]
    assert lines == ["preparing the embedded model (one time, ~20 s)"]
    out, err = capfd.readouterr()
    assert "de-quantizing" not in (out + err).lower() and "it/s" not in out + err and "%|" not in out + err


def test_model_loads_and_calls_run_on_the_engine_thread(engine):
    """The caller's thread runs no torch work for the engine (no OpenMP team of its own: openmp.py)."""
    import threading

    assert engine._worker.name == "synthrun-local-llm"
    assert engine.call(threading.current_thread) is engine._worker
    with pytest.raises(ZeroDivisionError):
        engine.call(lambda: 1 / 0)
    # the engine still serves after a failing call
    assert engine.generate(qa_messages("HDF5 chunks"), max_tokens=4, temperature=0.0).completion_tokens >= 1


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("rope", [{"rope_theta": 10000.0, "rope_type": "default"},
                                  {"rope_theta": 10000.0, "rope_type": "linear", "factor": 2.0}])
def test_rope_tables_equal_those_of_a_transformers_model_in_the_same_dtype(dtype, rope):
    """FastLlama's cos/sin tables are the ones transformers' rotary embedding gives once the model is
    cast to the compute dtype (its inverse frequencies are rounded with it), on a tiny random model;
    the default rope is computed by FastLlama itself, others through transformers' functions."""
    import torch
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    from synthrun.llm.llama_fast import FastLlama

    config = {"num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "hidden_size": 64,
              "head_dim": 16, "intermediate_size": 32, "vocab_size": 32, "rms_norm_eps": 1e-5,
              "max_position_embeddings": 64, "rope_parameters": rope}
    shapes = {"model.embed_tokens.weight": (32, 64), "model.norm.weight": (64,),
              "model.layers.0.input_layernorm.weight": (64,), "model.layers.0.post_attention_layernorm.weight": (64,),
              "model.layers.0.self_attn.q_proj.weight": (64, 64), "model.layers.0.self_attn.k_proj.weight": (32, 64),
              "model.layers.0.self_attn.v_proj.weight": (32, 64), "model.layers.0.self_attn.o_proj.weight": (64, 64),
              "model.layers.0.mlp.gate_proj.weight": (32, 64), "model.layers.0.mlp.up_proj.weight": (32, 64),
              "model.layers.0.mlp.down_proj.weight": (64, 32)}
    to = getattr(torch, dtype)
    fast = FastLlama({k: torch.randn(v).to(to) for k, v in shapes.items()}, config, torch)
    rotary = LlamaRotaryEmbedding(LlamaConfig(**config)).to(to)
    cos, sin = rotary(torch.zeros(1, dtype=to), torch.arange(64)[None])
    assert torch.equal(fast.cos, cos[0]) and torch.equal(fast.sin, sin[0])
