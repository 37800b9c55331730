"""Answers cached by the code before the provider registry are still found: the cache key did not change.

``tests/data/llm/main_cache.sqlite`` was written by main's LLMClient (before ProviderConfig and the
backend registry) for the requests below, against the fake server with ``provider_for(...,
extra={"top_k": 5})``; ``main_cache_answers.json`` holds the texts it got.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pydantic import BaseModel

from synthrun.llm.client import LLMClient
from synthrun.llm.types import LLMRequest
from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for

DATA = Path(__file__).parents[1] / "data" / "llm"


class Answer(BaseModel):  # same name and fields as when the cache was written (part of the key)
    question: str
    answer: str


def _requests() -> list[LLMRequest]:
    reqs = [LLMRequest(messages=[{"role": "user", "content": f"Write a QA pair about topic {i}."}], schema=Answer)
            for i in range(3)]
    reqs.append(LLMRequest(messages=[{"role": "user", "content": "Say hello."}]))
    reqs.append(LLMRequest(messages=[{"role": "user", "content": "Say hi."}],
                           params={"temperature": 0.0, "top_p": 0.5}))
    return reqs


def test_a_cache_written_before_the_registry_answers_every_request(tmp_path):
    cache = tmp_path / "llm.sqlite"
    shutil.copy(DATA / "main_cache.sqlite", cache)
    expected = json.loads((DATA / "main_cache_answers.json").read_text())
    # transport settings differ from when the cache was written (other port, concurrency, timeout,
    # a declared kind): none of them is part of the key
    with FakeOpenAIServer() as server:
        provider = provider_for(server.base_url, extra={"top_k": 5}, concurrency=2, timeout=30, kind="http",
                                max_retries=0, circuit_breaker=3)
        client = LLMClient(provider, cache_path=cache, show_progress=False)
        results = client.map(_requests())
        client.close()
        assert server.requests == []
    assert [r.text for r in results] == expected
    assert all(r.cached and r.ok for r in results)


def test_a_changed_sampling_setting_misses_the_old_cache(tmp_path):
    cache = tmp_path / "llm.sqlite"
    shutil.copy(DATA / "main_cache.sqlite", cache)
    with FakeOpenAIServer() as server:
        provider = provider_for(server.base_url, extra={"top_k": 5}, temperature=0.3)
        client = LLMClient(provider, cache_path=cache, show_progress=False)
        results = client.map(_requests()[:3])
        client.close()
        assert len(server.requests) == 3
    assert not any(r.cached for r in results)
