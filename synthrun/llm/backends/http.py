"""Backend ``http``: the built-in aiohttp client for servers that speak OpenAI's chat-completions API."""

from __future__ import annotations

from synthrun.llm.backends import Backend, Transport
from synthrun.llm.provider_config import ProviderConfig
from synthrun.llm.transport import OPENAI_COMPATIBLE_PREFIXES, HTTPTransport

_OLLAMA = "ollama serve && ollama pull llama3.2  (OLLAMA_API_BASE if not on 127.0.0.1:11434)"


def make(cfg: ProviderConfig) -> Transport:
    return HTTPTransport(cfg.as_dict(), cfg.concurrency, cfg.timeout)


BACKEND = Backend(
    kind="http",
    make=make,
    prefixes=OPENAI_COMPATIBLE_PREFIXES,
    route="http",
    hints={
        "openai": "export OPENAI_API_KEY=...  (optional OPENAI_API_BASE for a proxy)",
        "ollama_chat": _OLLAMA,
        "ollama": _OLLAMA,
        "hosted_vllm": (
            "vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000  (or any OpenAI-compatible server; "
            "set provider.api_base / VLLM_API_BASE and provider.model=hosted_vllm/MODEL)"
        ),
        "": "any OpenAI-compatible server: set provider.api_base",
    },
)
