"""The persistent answer cache, on its own and through LLMClient against a real loopback server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from pydantic import BaseModel, Field

from synthrun.llm.cache import ResponseCache, request_key
from synthrun.llm.client import LLMClient
from synthrun.llm.types import LLMRequest, LLMStats
from tests.llm.conftest import FAKE_KEY


class Fact(BaseModel):
    claim: str
    confidence: int = Field(ge=1, le=5)


def msgs(i) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"State fact number {i}."}]


def requests(n: int) -> list[LLMRequest]:
    return [LLMRequest(messages=msgs(i), schema=Fact, tag=i) for i in range(n)]


def test_second_identical_map_makes_no_http_calls(fake_server, fake_provider, tmp_path):
    cache = tmp_path / "cache" / "llm.sqlite"
    first = LLMClient(fake_provider, cache_path=cache, show_progress=False).map(requests(5))
    assert len(fake_server.requests) == 5 and not any(r.cached for r in first)

    stats = LLMStats()
    again = LLMClient(fake_provider, cache_path=cache, stats=stats, show_progress=False)  # a re-run
    second = again.map(requests(5))
    assert len(fake_server.requests) == 5  # nothing new reached the server
    assert stats.calls == 5 and stats.cache_hits == 5
    for a, b in zip(first, second, strict=True):
        assert b.cached and b.ok and b.attempts == 0
        assert (b.text, b.parsed, b.request.tag) == (a.text, a.parsed, a.request.tag)
        assert (b.prompt_tokens, b.completion_tokens, b.cost_usd) == (a.prompt_tokens, a.completion_tokens,
                                                                       a.cost_usd)
    # cached answers keep their token counts
    assert stats.prompt_tokens == sum(r.prompt_tokens for r in first) > 0


def test_resumed_run_only_asks_what_is_missing(fake_server, fake_provider, tmp_path):
    cache = tmp_path / "llm.sqlite"
    LLMClient(fake_provider, cache_path=cache, show_progress=False).map(requests(3))
    stats = LLMStats()
    LLMClient(fake_provider, cache_path=cache, stats=stats, show_progress=False).map(requests(7))
    assert len(fake_server.requests) == 3 + 4
    assert (stats.calls, stats.cache_hits) == (7, 3)


def test_different_params_are_different_entries(fake_server, fake_provider, tmp_path):
    cache = tmp_path / "llm.sqlite"
    client = LLMClient(fake_provider, cache_path=cache, show_progress=False)
    client.map(requests(1))
    client.map([LLMRequest(messages=msgs(0), schema=Fact, params={"seed": 1})])
    client.map([LLMRequest(messages=msgs(0), schema=None)])
    assert len(fake_server.requests) == 3
    assert client.stats.cache_hits == 0


def test_only_valid_answers_are_cached(fake_server, fake_provider, tmp_path):
    cache = tmp_path / "llm.sqlite"
    fake_server.fail_next("garbage", "garbage", "garbage")
    client = LLMClient({**fake_provider, "json_retries": 2}, cache_path=cache, show_progress=False)
    assert client.complete(msgs(0), schema=Fact).error == "invalid_json"
    assert len(client.cache) == 0
    result = client.complete(msgs(0), schema=Fact)
    assert result.ok and not result.cached and len(fake_server.requests) == 4
    assert len(client.cache) == 1


def test_reasked_answer_is_cached_under_the_original_request(fake_server, fake_provider, tmp_path):
    cache = tmp_path / "llm.sqlite"
    fake_server.fail_next("mismatch")
    first = LLMClient(fake_provider, cache_path=cache, show_progress=False).complete(msgs(0), schema=Fact)
    assert first.ok and len(fake_server.requests) == 2
    again = LLMClient(fake_provider, cache_path=cache, show_progress=False).complete(msgs(0), schema=Fact)
    assert again.cached and again.parsed == first.parsed and len(fake_server.requests) == 2


def test_identical_requests_in_one_batch_are_asked_once(fake_server, fake_provider, tmp_path):
    fake_server.latency = 0.05
    client = LLMClient(fake_provider, cache_path=tmp_path / "llm.sqlite", show_progress=False)
    results = client.map([LLMRequest(messages=msgs(0), schema=Fact, tag=t) for t in "abc"])
    assert len(fake_server.requests) == 1
    assert [r.request.tag for r in results] == ["a", "b", "c"]
    assert len({r.text for r in results}) == 1 and all(r.ok for r in results)
    assert client.stats.cache_hits == 2


def test_changed_schema_does_not_reuse_unfit_answer(fake_server, fake_provider, tmp_path):
    cache = ResponseCache(tmp_path / "llm.sqlite")
    client = LLMClient(fake_provider, cache_path=tmp_path / "llm.sqlite", show_progress=False)
    key = request_key(client.model, msgs(0), Fact.model_json_schema(), client._defaults)
    cache.put(key, client.model, {"text": '{"claim": 5}', "prompt_tokens": 1, "completion_tokens": 1})
    result = client.complete(msgs(0), schema=Fact)
    assert result.ok and not result.cached and len(fake_server.requests) == 1
    # the planted entry sat under the very key the client looks up: it was replaced by the valid answer
    assert cache.get(key)["text"] == result.text


def test_key_and_api_base_never_stored(fake_server, fake_provider, tmp_path):
    cache = tmp_path / "llm.sqlite"
    client = LLMClient({**fake_provider, "extra": {"api_key": FAKE_KEY}}, cache_path=cache, show_progress=False)
    client.map(requests(3))
    assert all(h["Authorization"] == f"Bearer {FAKE_KEY}" for h in fake_server.headers)  # it was used
    client.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("llm.sqlite"))
    assert FAKE_KEY.encode() not in stored
    assert fake_server.base_url.encode() not in stored
    assert str(fake_server.port).encode() + b"/v1" not in stored


def test_request_key_ignores_secrets_and_transport():
    base = request_key("m", msgs(0), None, {"temperature": 0.5, "seed": 1})
    assert base == request_key("m", msgs(0), None, {"seed": 1, "temperature": 0.5, "api_key": "sk-x",
                                                     "timeout": 3, "extra_headers": {"a": "b"}})
    assert base != request_key("m", msgs(0), None, {"temperature": 0.5, "seed": 2})
    assert base != request_key("m2", msgs(0), None, {"temperature": 0.5, "seed": 1})
    assert base != request_key("m", msgs(1), None, {"temperature": 0.5, "seed": 1})
    assert base != request_key("m", msgs(0), Fact.model_json_schema(), {"temperature": 0.5, "seed": 1})


def test_answers_survive_sigkill(tmp_path):
    path = tmp_path / "llm.sqlite"
    script = textwrap.dedent(f"""
        import os, signal
        from synthrun.llm.cache import ResponseCache
        cache = ResponseCache({str(path)!r})
        for i in range(3):
            cache.put(f"k{{i}}", "m", {{"text": f"answer {{i}}"}})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), capture_output=True)
    assert proc.returncode == -9
    cache = ResponseCache(path)
    assert len(cache) == 3 and cache.get("k2") == {"text": "answer 2"} and cache.get("nope") is None


def _open_and_put(path: str, barrier, results) -> None:
    barrier.wait()  # both processes open the new cache at the same moment
    try:
        cache = ResponseCache(path)
        for i in range(10):
            cache.put(f"{os.getpid()}-{i}", "m", {"i": i})
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(f"{type(exc).__name__}: {exc}")


def test_two_processes_can_open_a_new_cache_at_once(tmp_path):
    # the jobs of a parallel sweep (hydra/launcher=joblib) share one new cache; SQLite does not wait on
    # the switch to WAL, so without a retry about a third of these trials failed with SQLITE_BUSY
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    outcomes = []
    for trial in range(12):
        barrier, results = ctx.Barrier(2), ctx.Queue()
        path = str(tmp_path / f"t{trial}" / "llm.sqlite")
        procs = [ctx.Process(target=_open_and_put, args=(path, barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        outcomes += [results.get(timeout=5) for _ in procs]
        assert len(ResponseCache(path)._db.execute("SELECT key FROM answers").fetchall()) == 20
    assert outcomes == ["ok"] * 24, [o for o in outcomes if o != "ok"]
