"""Fixtures for LLM tests: a real OpenAI-compatible server on 127.0.0.1 and a provider dict for it.

Other test folders can use the same server directly::

    from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for
    with FakeOpenAIServer(latency=0.01) as server: ...
"""

from __future__ import annotations

import pytest

from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for

FAKE_KEY_ENV = "SYNTHRUN_TEST_FAKE_KEY"
FAKE_KEY = "sk-fake-test-key-7f3a9c1e5b"


@pytest.fixture
def fake_server():
    """A running :class:`FakeOpenAIServer` (no latency), stopped after the test."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def fake_provider(fake_server, monkeypatch):
    """A provider dict pointing at ``fake_server``, with a fake key in the environment."""
    monkeypatch.setenv(FAKE_KEY_ENV, FAKE_KEY)
    return provider_for(fake_server.base_url, api_key_env=FAKE_KEY_ENV, timeout=5, price_in=1.0, price_out=2.0)
