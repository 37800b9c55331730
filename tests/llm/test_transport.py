"""Routing decisions and error classification of the transports."""

from __future__ import annotations

import email.utils

import pytest

from synthrun.llm.transport import (
    _retry_after,
    base_url,
    http_error,
    is_openai_compatible,
    scrub,
    wire_model_name,
)


@pytest.mark.parametrize("provider, http, url, wire", [
    ({"model": "openai/gpt-4o-mini"}, True, "https://api.openai.com/v1", "gpt-4o-mini"),
    ({"model": "hosted_vllm/Qwen/Qwen2.5-7B-Instruct", "api_base": "http://h:8000/v1/"}, True,
     "http://h:8000/v1", "Qwen/Qwen2.5-7B-Instruct"),
    ({"model": "ollama_chat/llama3.2", "api_base": "http://127.0.0.1:11434"}, True,
     "http://127.0.0.1:11434/v1", "llama3.2"),
    ({"model": "my-model", "api_base": "http://h/v1", "openai_compatible": True}, True, "http://h/v1", "my-model"),
    ({"model": "anthropic/claude-3-5-haiku-latest"}, False, None, None),
    ({"model": "gemini/gemini-2.0-flash"}, False, None, None),
    ({"model": "local/smollm2-135m"}, False, None, None),
    ({"model": "openai/gpt-4o-mini", "openai_compatible": False}, False, None, None),
])
def test_routing(provider, http, url, wire):
    assert is_openai_compatible(provider) is http
    if http:
        assert base_url(provider) == url
        assert wire_model_name(provider["model"]) == wire


def test_status_classification():
    assert (http_error(429, "x", 2.0).reason, http_error(429, "x").retryable) == ("rate_limited", True)
    assert http_error(429, "x", 2.0).retry_after == 2.0
    assert (http_error(503, "x").reason, http_error(503, "x").retryable) == ("http_5xx", True)
    assert (http_error(401, "x").reason, http_error(401, "x").retryable) == ("http_4xx", False)
    assert http_error(400, "This model's maximum context length is 8192 tokens").reason == "context_window_exceeded"
    assert http_error(408, "x").reason == "timeout"


def test_retry_after_seconds_and_http_date(monkeypatch):
    import types

    import synthrun.llm.transport as transport

    now = 1_767_225_600.0  # a whole second, so the HTTP date loses nothing
    monkeypatch.setattr(transport, "time", types.SimpleNamespace(time=lambda: now))
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    assert _retry_after(email.utils.formatdate(now + 30, usegmt=True)) == 30.0
    assert _retry_after(email.utils.formatdate(now - 30, usegmt=True)) == 0.0  # a date in the past


def test_scrub_removes_keys():
    text = scrub("Incorrect API key provided: sk-proj-abcdef123456 for my-secret-value", "my-secret-value")
    assert "abcdef123456" not in text and "my-secret-value" not in text and "Incorrect API key" in text
