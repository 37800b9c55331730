"""Backend ``litellm``: every provider litellm knows (Anthropic, Gemini, ...), through ``litellm.acompletion``."""

from __future__ import annotations

from synthrun.llm.backends import Backend, Transport
from synthrun.llm.provider_config import ProviderConfig


def make(cfg: ProviderConfig) -> Transport:
    from synthrun.llm.transport import LiteLLMTransport

    return LiteLLMTransport(cfg.as_dict(), cfg.timeout)


BACKEND = Backend(
    kind="litellm",
    make=make,
    prefixes=("anthropic", "gemini"),
    route="litellm",
    hints={
        "anthropic": "export ANTHROPIC_API_KEY=...",
        "gemini": "export GEMINI_API_KEY=...",
        "": "see https://docs.litellm.ai/docs/providers",
    },
)
