"""Plain data types exchanged with the LLM client (no heavy imports here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel


@dataclass
class LLMRequest:
    """One chat request.

    Attributes:
        messages: OpenAI-style chat messages.
        schema: Pydantic model the JSON answer must validate against, or None for free text.
        params: Extra sampling parameters (temperature, max_tokens, seed ...), merged over
            the client's defaults.
        tag: Caller's own value, handed back untouched in the result.
    """

    messages: list[dict[str, Any]]
    schema: type[BaseModel] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tag: Any = None


@dataclass
class LLMResult:
    """The outcome of one request; ``error`` is a short reason code when it failed."""

    request: LLMRequest
    text: str | None = None
    parsed: BaseModel | None = None
    error: str | None = None
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cached: bool = False
    attempts: int = 0
    #: OpenAI-style ``choice.logprobs`` when the request asked for ``logprobs`` and the provider gave them.
    logprobs: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class LLMStats:
    """Counters one stage's client adds to; the runner copies them into metrics.json."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    retries: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    #: Why the client stopped sending (``circuit_open`` or ``storage``) and a one-line explanation.
    halted: str | None = None
    halt_message: str = ""

    def add_failure(self, reason: str) -> None:
        self.failures[reason] = self.failures.get(reason, 0) + 1


class LLMProtocol(Protocol):
    """What a stage may use of ``ctx.llm``: a batch of requests, or one conversation.

    :class:`synthrun.llm.client.LLMClient` is the real one; ``tests/fixtures.py`` has an in-memory fake.
    Both never raise for a failed request: ``result.error`` holds the reason code.
    """

    stats: LLMStats

    def map(self, requests: list[LLMRequest], desc: str = "") -> list[LLMResult]:
        """Answer ``requests`` (concurrently where the client can) in their order."""
        ...

    def complete(self, messages: list[dict[str, Any]], schema: type[BaseModel] | None = None,
                 **params: Any) -> LLMResult:
        """One request, answered synchronously."""
        ...
