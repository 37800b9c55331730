"""The backend registry: a provider's model prefix or kind picks the module that carries its requests."""

from __future__ import annotations

import sys

import pytest

import synthrun.llm.backends as backends
from synthrun.errors import ProviderError
from synthrun.llm.backends import backend, kind_for, kinds, make_transport
from synthrun.llm.client import LLMClient
from synthrun.llm.local_provider import LocalTransport
from synthrun.llm.provider_config import TRANSPORT_FIELDS, ProviderConfig, answer_fields
from synthrun.llm.transport import HTTPTransport, LiteLLMTransport
from synthrun.paths import conf_dir


def cfg(**kw):
    return ProviderConfig.parse(kw)


@pytest.mark.parametrize("provider, kind", [
    ({"model": "openai/gpt-4o-mini"}, "http"),
    ({"model": "hosted_vllm/Qwen/Qwen2.5-7B-Instruct"}, "http"),
    ({"model": "ollama_chat/llama3.2", "kind": "litellm"}, "http"),  # a known prefix wins over the yaml
    ({"model": "anthropic/claude"}, "litellm"),
    ({"model": "local/smollm2-135m"}, "local"),
    ({"model": "local/smollm2-135m", "via_litellm": True}, "litellm"),
    ({"model": "Qwen/Qwen2.5-7B-Instruct", "kind": "http"}, "http"),  # no known prefix: the declared kind
    ({"model": "mystery-model"}, "litellm"),
    ({"model": "openai/x", "openai_compatible": False}, "litellm"),
    ({"model": "my-model", "openai_compatible": True}, "http"),
])
def test_kind_for(provider, kind):
    assert kind_for(cfg(**provider)) == kind


def test_every_shipped_provider_declares_a_backend_that_exists():
    import yaml

    for path in (conf_dir() / "provider").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        assert data["kind"] in kinds(), path.name
        assert kind_for(cfg(**{**data, "api_base": None})) == data["kind"], path.name


def test_transports_are_built_from_the_typed_config():
    http = make_transport(cfg(model="openai/x", api_base="http://127.0.0.1:9/v1", concurrency=3, timeout=7))
    assert isinstance(http, HTTPTransport) and http.concurrency == 3 and http.timeout == 7.0
    assert http.url == "http://127.0.0.1:9/v1/chat/completions" and http.model == "x"
    assert isinstance(make_transport(cfg(model="anthropic/claude")), LiteLLMTransport)
    local = make_transport(cfg(model="local/smollm2-135m", batch_size=16, threads=1, concurrency=16))
    assert isinstance(local, LocalTransport)
    # the engine's batch size and threads come from the provider, never from the environment
    assert local.settings == {"threads": 1, "max_batch": 16, "quantize": None}


def test_unknown_kind_is_one_line_naming_the_choices():
    with pytest.raises(ProviderError) as exc:
        LLMClient({"model": "mystery", "kind": "carrier_pigeon"})
    message = str(exc.value)
    assert "provider.kind='carrier_pigeon'" in message and "http" in message and "\n" not in message
    with pytest.raises(ProviderError, match="no such backend"):
        backend("../etc")


def test_bad_provider_values_are_one_line():
    with pytest.raises(ProviderError, match=r"provider.timeout='soon'"):
        cfg(model="openai/x", timeout="soon")
    with pytest.raises(ProviderError, match="no 'model'"):
        cfg(model="")
    with pytest.raises(ProviderError, match="json_mode"):
        cfg(model="openai/x", json_mode="xml")


def test_transport_fields_are_left_out_of_what_an_answer_depends_on():
    provider = {"model": "openai/x", "temperature": 0.2, "concurrency": 4, "api_base": "http://h", "kind": "http",
                "batch_size": 8, "threads": 2, "timeout": 5, "quantize": "int8"}
    assert answer_fields(provider) == {"model": "openai/x", "temperature": 0.2, "quantize": "int8"}
    assert {"concurrency", "batch_size", "threads", "api_base", "kind"} <= TRANSPORT_FIELDS


ECHO_BACKEND = '''
from synthrun.llm.backends import Backend
from synthrun.llm.transport import Completion


class Echo:
    def __init__(self, cfg):
        self.prefix = cfg.model_extra.get("echo_prefix", "")

    async def send(self, messages, params, response_format):
        return Completion(self.prefix + messages[-1]["content"], 3, 4, "stop")

    async def aclose(self):
        return None


BACKEND = Backend(kind="echo", make=Echo, route="in-process", hints={"": "nothing to set up"})
'''


def test_a_new_backend_is_one_module(tmp_path, monkeypatch):
    (tmp_path / "echo.py").write_text(ECHO_BACKEND)
    monkeypatch.setattr(backends, "__path__", [*backends.__path__, str(tmp_path)])
    backends.kinds.cache_clear()
    try:
        assert "echo" in kinds()
        client = LLMClient({"model": "echo-1", "kind": "echo", "echo_prefix": "> "}, show_progress=False)
        result = client.complete([{"role": "user", "content": "hello"}])
        assert result.ok and result.text == "> hello" and result.completion_tokens == 4
    finally:
        backends.kinds.cache_clear()
        sys.modules.pop("synthrun.llm.backends.echo", None)
