"""LLMClient against a real OpenAI-compatible server on 127.0.0.1 (tests/llm/fake_openai_server.py)."""

from __future__ import annotations

import json
import random
import socket

import pytest
from pydantic import BaseModel, Field

from synthrun.llm.client import LLMClient
from synthrun.llm.types import LLMRequest, LLMStats
from tests.llm.conftest import FAKE_KEY
from tests.llm.fake_openai_server import FakeOpenAIServer, default_responder, instance_for


class QA(BaseModel):
    question: str
    answer: str
    score: int = Field(ge=1, le=10)
    tags: list[str]


def msgs(i: int | str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": f"Question {i}?"}]


def expected_answer(messages, schema=QA) -> QA:
    """What the fake server's default responder answers for ``messages``."""
    fmt = {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()}}
    return schema.model_validate_json(default_responder({"messages": messages, "response_format": fmt}))


def spy_waits(client: LLMClient) -> list[tuple[str, float]]:
    """Record (failure reason, back-off seconds) for every retry the client schedules."""
    waits: list[tuple[str, float]] = []
    real_wait = client._wait

    def recording_wait(state):
        waits.append((state.outcome.exception().reason, real_wait(state)))
        return waits[-1][1]

    client._wait = recording_wait
    return waits


def test_map_returns_validated_answers_in_order(fake_server, fake_provider):
    client = LLMClient(fake_provider, show_progress=False)
    requests = [LLMRequest(messages=msgs(i), schema=QA, tag=f"t{i}") for i in range(6)]
    results = client.map(requests, desc="qa")

    assert [r.request.tag for r in results] == [f"t{i}" for i in range(6)]
    for i, r in enumerate(results):
        assert r.ok and r.error is None and not r.cached and r.attempts == 1
        assert isinstance(r.parsed, QA) and 1 <= r.parsed.score <= 10
        assert r.parsed == expected_answer(msgs(i))
        assert json.loads(r.text) == r.parsed.model_dump()
        assert r.model == "openai/fake-model"
    body = fake_server.requests[0]
    assert body["model"] == "fake-model"  # litellm routing prefix stripped on the wire
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == QA.model_json_schema()
    assert (body["max_tokens"], body["seed"], body["temperature"]) == (64, 0, 0.7)
    assert all(h["Authorization"] == f"Bearer {FAKE_KEY}" for h in fake_server.headers)
    assert client.stats.calls == 6 and client.stats.failures == {} and client.stats.retries == 0


def test_request_params_override_provider_defaults(fake_server, fake_provider):
    client = LLMClient({**fake_provider, "extra": {"top_p": 0.5}}, show_progress=False)
    client.map([LLMRequest(messages=msgs(1), schema=QA, params={"max_tokens": 10, "temperature": 0.0})])
    body = fake_server.requests[0]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (10, 0.0, 0.5, 0)


def test_complete_free_text(fake_server, fake_provider):
    client = LLMClient(fake_provider, show_progress=False)
    result = client.complete(msgs("free"), max_tokens=20)
    assert result.ok and result.parsed is None
    assert result.text.startswith("Answer ") and "Question free?" in result.text
    assert "response_format" not in fake_server.requests[0]
    assert fake_server.requests[0]["max_tokens"] == 20


@pytest.mark.parametrize("mode, expected", [("object", {"type": "json_object"}), ("none", None)])
def test_json_mode(fake_server, fake_provider, mode, expected):
    fake_server.responder = lambda req: json.dumps({"question": "q", "answer": "a", "score": 3, "tags": []})
    client = LLMClient({**fake_provider, "json_mode": mode}, show_progress=False)
    result = client.complete(msgs(1), schema=QA)
    assert result.ok and result.parsed == QA(question="q", answer="a", score=3, tags=[])
    assert fake_server.requests[0].get("response_format") == expected


def test_rate_limited_then_success_honours_retry_after(fake_server, fake_provider):
    fake_server.fail_next("429:0.3")
    client = LLMClient(fake_provider, show_progress=False)
    waits = spy_waits(client)
    result = client.complete(msgs(1), schema=QA)
    assert result.ok and result.parsed == expected_answer(msgs(1))
    assert result.attempts == 2 and len(fake_server.requests) == 2
    assert waits == [("rate_limited", 0.3)]  # the back-off is exactly the server's Retry-After
    assert client.stats.retries == 1 and client.stats.failures == {}


@pytest.mark.parametrize("status", ["500", "503"])
def test_server_error_then_success(fake_server, fake_provider, status):
    fake_server.fail_next(status, status)
    client = LLMClient(fake_provider, show_progress=False)
    result = client.complete(msgs(1), schema=QA)
    assert result.ok and result.attempts == 3 and client.stats.retries == 2


def test_server_errors_exhaust_retries(fake_server, fake_provider):
    fake_server.fail_next(*["500"] * 10)
    client = LLMClient({**fake_provider, "max_retries": 2}, show_progress=False)
    result = client.complete(msgs(1), schema=QA)
    assert result.error == "http_5xx" and result.parsed is None
    assert len(fake_server.requests) == 3 and result.attempts == 3
    assert client.stats.failures == {"http_5xx": 1} and client.stats.retries == 2


@pytest.mark.parametrize("status", ["400", "401", "404"])
def test_client_error_fails_at_once(fake_server, fake_provider, status, caplog):
    fake_server.fail_next(status)
    client = LLMClient(fake_provider, show_progress=False)
    result = client.complete(msgs(1), schema=QA)
    assert result.error == "http_4xx" and result.attempts == 1
    assert len(fake_server.requests) == 1
    assert client.stats.failures == {"http_4xx": 1}
    assert f"HTTP {status}" in caplog.text and FAKE_KEY not in caplog.text


def test_timeout_then_retry(fake_server, fake_provider):
    fake_server.fail_next("hang:10")
    client = LLMClient({**fake_provider, "timeout": 0.5}, show_progress=False)
    waits = spy_waits(client)
    result = client.complete(msgs(1), schema=QA)
    assert result.ok and result.attempts == 2 and client.stats.retries == 1
    assert [reason for reason, _ in waits] == ["timeout"]  # the hung request was abandoned, not awaited
    assert len(fake_server.requests) == 2 and fake_server.answered == 1


def test_connection_refused_is_reported(fake_provider):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = {**fake_provider, "api_base": f"http://127.0.0.1:{port}/v1", "max_retries": 1}
    client = LLMClient(provider, show_progress=False)
    result = client.complete(msgs(1), schema=QA)
    assert result.error == "connection" and result.attempts == 2


def test_malformed_json_is_repaired_without_reasking(fake_server, fake_provider):
    fake_server.fail_next("malformed")
    client = LLMClient(fake_provider, show_progress=False)
    result = client.complete(msgs(1), schema=QA)
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.text)
    assert result.ok and result.parsed == expected_answer(msgs(1))
    assert len(fake_server.requests) == 1 and client.stats.retries == 0


@pytest.mark.parametrize("action, reason", [("garbage", "invalid_json"), ("mismatch", "schema_mismatch"),
                                            ("empty", "empty_response")])
def test_unusable_answer_then_reask_succeeds(fake_server, fake_provider, action, reason):
    fake_server.fail_next(action)
    client = LLMClient(fake_provider, show_progress=False)
    result = client.complete(msgs(1), schema=QA)
    assert result.ok and isinstance(result.parsed, QA)
    assert len(fake_server.requests) == 2 and client.stats.retries == 1
    reask = fake_server.requests[1]["messages"]
    assert reask[:2] == msgs(1)
    assert reask[2]["role"] == "assistant" and reask[3]["role"] == "user"
    assert reason in reask[3]["content"]
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert (client.stats.prompt_tokens, client.stats.completion_tokens) == (
        result.prompt_tokens, result.completion_tokens)


def test_reasks_exhausted_gives_reason(fake_server, fake_provider):
    fake_server.fail_next("garbage", "garbage", "garbage")
    client = LLMClient({**fake_provider, "json_retries": 2}, show_progress=False)
    result = client.complete(msgs(1), schema=QA)
    assert result.error == "invalid_json" and result.parsed is None
    assert result.text.startswith("I am sorry")
    assert len(fake_server.requests) == 3
    assert client.stats.failures == {"invalid_json": 1}


def test_one_failure_does_not_spoil_the_batch(fake_server, fake_provider):
    fake_server.fail_next("401")
    client = LLMClient({**fake_provider, "concurrency": 1}, show_progress=False)
    results = client.map([LLMRequest(messages=msgs(i), schema=QA, tag=i) for i in range(4)])
    assert [r.error for r in results] == ["http_4xx", None, None, None]
    assert all(isinstance(r.parsed, QA) for r in results[1:])


def test_concurrency_bound_is_honoured(fake_server, fake_provider):
    fake_server.latency = 0.05
    client = LLMClient({**fake_provider, "concurrency": 3}, show_progress=False)
    results = client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(15)])
    assert all(r.ok for r in results)
    assert fake_server.max_in_flight == 3  # used in parallel, never more than allowed


def test_stats_tokens_and_cost_add_up(fake_server, fake_provider):
    fake_server.fail_next("garbage")  # one re-ask: its tokens count too
    stats = LLMStats()
    client = LLMClient(fake_provider, stats=stats, show_progress=False)  # $1 / $2 per 1M tokens
    results = client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(5)])
    p = sum(r.prompt_tokens for r in results)
    c = sum(r.completion_tokens for r in results)
    assert p > 0 and c > 0
    assert (stats.prompt_tokens, stats.completion_tokens, stats.calls) == (p, c, 5)
    assert stats.cost_usd == pytest.approx(p * 1e-6 + c * 2e-6)
    assert sum(r.cost_usd for r in results) == pytest.approx(stats.cost_usd)
    # The server's own count of tokens (~len/4) matches what the client added up.
    server_prompt = sum(max(1, len(" ".join(m["content"] for m in req["messages"])) // 4)
                        for req in fake_server.requests)
    assert server_prompt == p


def test_generated_answers_respect_schema_constraints():
    class Inner(BaseModel):
        name: str = Field(min_length=30)
        level: float = Field(gt=0, lt=1)

    class Outer(BaseModel):
        items: list[Inner] = Field(min_length=3)
        kind: str = Field(pattern="^(a|b)$", default="a")
        maybe: int | None = Field(ge=5, le=6)

    schema = Outer.model_json_schema()
    schema["properties"].pop("kind")
    for seed in range(5):
        Outer.model_validate(instance_for(schema, random.Random(seed)))


def test_litellm_route_with_mock_response():
    """Non-OpenAI providers go through litellm.acompletion (unit test with its mock_response)."""
    answer = {"question": "What is HDF5?", "answer": "A file format.", "score": 8, "tags": ["hdf5"]}
    provider = {"name": "anthropic", "model": "anthropic/claude-3-5-haiku-latest", "api_base": None,
                "api_key_env": None, "concurrency": 2, "timeout": 10, "max_retries": 0,
                "temperature": 0.7, "max_tokens": 64, "seed": 0, "price_in": 1.0, "price_out": 5.0,
                "extra": {"mock_response": json.dumps(answer)}}
    client = LLMClient(provider, show_progress=False)
    results = client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(2)])
    for r in results:
        assert r.ok and r.parsed == QA(**answer)
        assert r.prompt_tokens > 0 and r.completion_tokens > 0
        assert r.cost_usd == pytest.approx(r.prompt_tokens * 1e-6 + r.completion_tokens * 5e-6)


def test_litellm_errors_are_classified():
    from synthrun.llm.transport import import_litellm, litellm_error

    litellm = import_litellm()
    rate = litellm_error(litellm.RateLimitError("slow down", llm_provider="anthropic", model="m"))
    auth = litellm_error(litellm.AuthenticationError("bad key sk-abcdef123456", llm_provider="anthropic",
                                                     model="m"))
    timeout = litellm_error(litellm.Timeout("too slow", model="m", llm_provider="anthropic"))
    assert (rate.reason, rate.retryable) == ("rate_limited", True)
    assert (auth.reason, auth.retryable) == ("http_4xx", False) and "sk-abcdef123456" not in str(auth)
    assert (timeout.reason, timeout.retryable) == ("timeout", True)


def test_server_process_standalone():
    """The server also runs as its own process (used by resume tests and the benchmark)."""
    from tests.llm.fake_openai_server import FakeOpenAIServerProcess

    with FakeOpenAIServerProcess(latency=0.01, script=["429:0"]) as server:
        provider = {"name": "p", "model": "hosted_vllm/some/model", "api_base": server.base_url,
                    "api_key_env": None, "concurrency": 2, "timeout": 5, "max_retries": 2,
                    "retry_backoff": 0.01}
        client = LLMClient(provider, show_progress=False)
        results = client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(3)])
        assert all(r.ok for r in results) and client.stats.retries == 1
        stats = server.stats()
        assert stats["requests"] == 4 and stats["answered"] == 3 and stats["max_in_flight"] <= 2


def test_server_thread_is_reusable_as_context_manager():
    with FakeOpenAIServer(latency=0.0) as server:
        assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")


def test_unexpected_client_bug_fails_only_that_request(fake_server, fake_provider):
    client = LLMClient(fake_provider, show_progress=False)
    real_send = client._transport.send

    async def flaky_send(messages, params, response_format):
        if messages[-1]["content"] == "Question 1?":
            raise RuntimeError("boom")
        return await real_send(messages, params, response_format)

    client._transport.send = flaky_send
    results = client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(3)])
    assert [r.error for r in results] == [None, "client_error", None]
    assert client.stats.failures == {"client_error": 1}


def test_map_works_inside_a_running_event_loop(fake_server, fake_provider):
    import asyncio

    client = LLMClient(fake_provider, show_progress=False)

    async def caller():
        return client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(2)])

    results = asyncio.run(caller())
    assert all(isinstance(r.parsed, QA) for r in results)


def test_amap_from_async_code(fake_server, fake_provider):
    import asyncio

    client = LLMClient(fake_provider, show_progress=False)

    async def caller():
        try:
            return await client.amap([LLMRequest(messages=msgs(i), schema=QA) for i in range(3)])
        finally:
            await client.aclose()

    results = asyncio.run(caller())
    assert [r.parsed for r in results] == [expected_answer(msgs(i)) for i in range(3)]


def test_accepts_an_omegaconf_provider(fake_server, fake_provider):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({**fake_provider, "extra": {"top_p": 0.9}})
    result = LLMClient(cfg, show_progress=False).complete(msgs(1), schema=QA)
    assert result.ok and fake_server.requests[0]["top_p"] == 0.9


def test_litellm_route_against_the_loopback_server(fake_server, fake_provider):
    """The litellm transport over real HTTP: retries, parsing, key and token accounting."""
    provider = {**fake_provider, "openai_compatible": False}  # forces litellm.acompletion
    fake_server.fail_next("429:0")
    client = LLMClient(provider, show_progress=False)
    assert type(client._transport).__name__ == "LiteLLMTransport"
    results = client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(2)])
    assert [r.parsed for r in results] == [expected_answer(msgs(i)) for i in range(2)]
    assert len(fake_server.requests) == 3 and client.stats.retries == 1
    assert all(h["Authorization"] == f"Bearer {FAKE_KEY}" for h in fake_server.headers)
    assert fake_server.requests[-1]["response_format"]["json_schema"]["schema"] == QA.model_json_schema()
    for r in results:
        assert r.prompt_tokens > 0 and r.cost_usd == pytest.approx(r.prompt_tokens * 1e-6 + r.completion_tokens * 2e-6)


def test_circuit_breaker_stops_sending_to_a_failing_server(fake_server, fake_provider, caplog):
    fake_server.set_mode("503")  # up, but every answer is a 503
    provider = {**fake_provider, "concurrency": 2, "max_retries": 3, "circuit_breaker": 4, "circuit_breaker_s": 0}
    client = LLMClient(provider, show_progress=False)
    results = client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(20)])
    assert all(r.error in ("http_5xx", "circuit_open") for r in results)
    # without the breaker: 20 requests x 4 attempts = 80; with it: the 4 that tripped it (+ 1 in flight)
    assert 4 <= len(fake_server.requests) <= 5
    assert client.stats.halted == "circuit_open" and client.stats.failures.get("circuit_open", 0) >= 15
    assert sum(client.stats.failures.values()) == 20
    assert caplog.text.count("stopped sending requests") == 1


def test_circuit_breaker_ignores_failures_followed_by_success(fake_server, fake_provider):
    fake_server.fail_next("500", "500", "500", "429:0", "429:0", "429:0", "429:0")
    provider = {**fake_provider, "concurrency": 1, "max_retries": 8, "circuit_breaker": 4, "circuit_breaker_s": 0}
    client = LLMClient(provider, show_progress=False)
    results = client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(3)])
    assert all(r.ok for r in results) and client.stats.halted is None  # 429s are pacing, not a dead server


@pytest.mark.parametrize("value", [0, -2, "x", 1.5])
def test_concurrency_below_one_is_refused(fake_provider, value):
    from synthrun.stage import StageError

    with pytest.raises(StageError, match="concurrency"):
        LLMClient({**fake_provider, "concurrency": value}, show_progress=False)


def test_cache_write_failure_keeps_the_answer_and_stops_sending(fake_server, fake_provider, tmp_path, monkeypatch):
    import sqlite3
    import tempfile

    from synthrun.llm.cache import ResponseCache, spill_path

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    real_insert = ResponseCache._insert
    calls = []

    def full_disk(self, rows):
        calls.append(len(rows))
        if len(calls) > 2:
            err = sqlite3.OperationalError("database or disk is full")
            err.sqlite_errorname = "SQLITE_FULL"
            raise err
        return real_insert(self, rows)

    monkeypatch.setattr(ResponseCache, "_insert", full_disk)
    cache_path = tmp_path / "cache" / "llm.sqlite"
    client = LLMClient({**fake_provider, "concurrency": 1}, cache_path=cache_path, show_progress=False)
    results = client.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(6)])
    client.close()
    # answers 0-2 came back (the third could not be cached but is kept); 3-5 were never sent
    assert [r.ok for r in results] == [True, True, True, False, False, False]
    assert {r.error for r in results[3:]} == {"storage"} and len(fake_server.requests) == 3
    assert client.stats.halted == "storage"
    assert str(cache_path) in client.stats.halt_message and "SQLITE_FULL" in client.stats.halt_message
    assert spill_path(cache_path).is_file()
    # space freed: the next client stores the kept answer and answers it from the cache
    monkeypatch.setattr(ResponseCache, "_insert", real_insert)
    again = LLMClient({**fake_provider, "concurrency": 1}, cache_path=cache_path, show_progress=False)
    results2 = again.map([LLMRequest(messages=msgs(i), schema=QA) for i in range(6)])
    assert [r.cached for r in results2] == [True, True, True, False, False, False]
    assert [r.parsed for r in results2[:3]] == [r.parsed for r in results[:3]]
    assert len(fake_server.requests) == 6 and not spill_path(cache_path).exists()
    assert len(again.cache) == 6


def test_logprobs_reach_the_result_and_survive_the_cache(tmp_path):
    from tests.llm.fake_openai_server import provider_for

    def top(body, content):
        return [("Yes", -0.1), ("No", -2.5)]

    msgs = [{"role": "user", "content": "Is this a question? Reply yes or no."}]
    with FakeOpenAIServer(responder=lambda body: "Yes", logprob_responder=top) as server:
        client = LLMClient(provider_for(server.base_url), cache_path=tmp_path / "c.sqlite", show_progress=False)
        first = client.complete(msgs, logprobs=True, top_logprobs=2, max_tokens=1)
        again = client.complete(msgs, logprobs=True, top_logprobs=2, max_tokens=1)
        plain = client.complete(msgs, max_tokens=1)
        client.close()
        assert len(server.requests) == 2  # the second logprobs request came from the cache
    tops = first.logprobs["content"][0]["top_logprobs"]
    assert [(t["token"], t["logprob"]) for t in tops] == [("Yes", -0.1), ("No", -2.5)]
    assert again.cached and again.logprobs == first.logprobs
    assert plain.logprobs is None  # not asked for, not given


def test_a_session_keeps_the_connections_across_map_calls(fake_server, fake_provider):
    client = LLMClient({**fake_provider, "concurrency": 2}, show_progress=False)
    batch = [[LLMRequest(messages=msgs(10 * b + i)) for i in range(4)] for b in range(4)]
    client.map(batch[0])
    client.map(batch[1])
    apart = {p[1] for p in fake_server.peers}
    assert len(apart) == 4, "without a session each map opens its own connections"
    with client.session():
        results = client.map(batch[2]) + client.map(batch[3])
        assert client._runner is not None
    assert all(r.ok for r in results) and client._runner is None
    together = {p[1] for p in fake_server.peers[8:]}
    assert len(together) == 2, "inside a session the second map reuses the first map's connections"
    assert client.map(batch[0])[0].ok and client.stats.calls == 20, "usable after the session"
