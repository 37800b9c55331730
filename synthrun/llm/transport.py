"""The transports behind backends ``http`` (a lean aiohttp client for OpenAI-compatible servers) and ``litellm``."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from synthrun.llm.jsonparse import JSONDecodeError, dumps, loads

log = logging.getLogger(__name__)

# Model prefixes (litellm spelling) whose servers speak the OpenAI chat-completions API.
OPENAI_COMPATIBLE_PREFIXES = ("openai", "hosted_vllm", "ollama_chat", "ollama", "lm_studio", "openai_like")
_DEFAULT_BASES = {
    "openai": "https://api.openai.com/v1",
    "hosted_vllm": "http://127.0.0.1:8000/v1",
    "ollama_chat": "http://127.0.0.1:11434",
    "ollama": "http://127.0.0.1:11434",
    "lm_studio": "http://127.0.0.1:1234/v1",
}
# OpenAI reasoning models take max_completion_tokens and only the default temperature.
_OPENAI_REASONING = re.compile(r"^(o\d|gpt-5)")
_SECRETISH = re.compile(r"\b(sk|key|api|tok)[-_][A-Za-z0-9*_\-]{6,}")


class TransportError(Exception):
    """One failed attempt, with a reason code and whether trying again can help.

    Attributes:
        reason: ``rate_limited``, ``timeout``, ``connection``, ``http_5xx``, ``http_4xx``,
            ``context_window_exceeded``, ``bad_response`` or ``provider_error``.
        retryable: Whether the client should retry.
        retry_after: Seconds the server asked us to wait, if it said.
        status: HTTP status, if there was one.
    """

    def __init__(self, reason: str, message: str, retryable: bool, retry_after: float | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


@dataclass(slots=True)
class Completion:
    """One answer from the model."""

    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    #: OpenAI-style ``choice.logprobs`` (``{"content": [{"token", "logprob", "top_logprobs"}]}``) when asked for.
    logprobs: dict[str, Any] | None = None


def model_prefix(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def is_openai_compatible(provider: dict[str, Any]) -> bool:
    """Whether requests for ``provider`` go over the built-in OpenAI-compatible HTTP client (backend ``http``)."""
    from synthrun.llm.backends import kind_for
    from synthrun.llm.provider_config import ProviderConfig

    return kind_for(ProviderConfig.parse(provider)) == "http"


def wire_model_name(model: str) -> str:
    """The model name the server expects (litellm's routing prefix removed)."""
    prefix = model_prefix(model)
    return model[len(prefix) + 1 :] if prefix in OPENAI_COMPATIBLE_PREFIXES else model


def base_url(provider: dict[str, Any]) -> str:
    """The ``.../v1`` URL that ``/chat/completions`` is appended to."""
    prefix = model_prefix(str(provider.get("model") or ""))
    base = str(provider.get("api_base") or _DEFAULT_BASES.get(prefix) or _DEFAULT_BASES["openai"]).rstrip("/")
    if prefix in ("ollama", "ollama_chat") and not base.endswith("/v1"):
        base += "/v1"  # Ollama's OpenAI-compatible API lives under /v1
    return base


def scrub(text: str, secret: str | None = None) -> str:
    """Remove anything that looks like a credential from a server message."""
    if secret:
        text = text.replace(secret, "***")
    return _SECRETISH.sub("***", text)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def http_error(status: int, message: str, retry_after: float | None = None) -> TransportError:
    """Classify an HTTP error status."""
    if status == 429:
        return TransportError("rate_limited", message, True, retry_after, status)
    if status == 408:
        return TransportError("timeout", message, True, retry_after, status)
    if status >= 500:
        return TransportError("http_5xx", message, True, retry_after, status)
    if status in (400, 413) and re.search(r"context|too long|maximum.*tokens", message, re.I):
        return TransportError("context_window_exceeded", message, False, None, status)
    return TransportError("http_4xx", message, False, None, status)


def api_key(provider: dict[str, Any]) -> str | None:
    """Read the provider's key from the environment, at call time (never stored)."""
    env = provider.get("api_key_env")
    return os.environ.get(str(env)) if env else None


class HTTPTransport:
    """Chat completions over one shared keep-alive aiohttp session (per event loop)."""

    def __init__(self, provider: dict[str, Any], concurrency: int, timeout: float):
        self.provider = provider
        self.url = base_url(provider) + "/chat/completions"
        self.model = wire_model_name(str(provider.get("model") or ""))
        self.concurrency = concurrency
        self.timeout = timeout
        self._reasoning = model_prefix(str(provider.get("model"))) == "openai" and bool(
            _OPENAI_REASONING.match(self.model)
        )
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get_session(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency, limit_per_host=self.concurrency, keepalive_timeout=60, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                skip_auto_headers=("User-Agent",),
            )
            self._loop = loop
        return self._session

    async def send(self, messages: list[dict[str, Any]], params: dict[str, Any],
                   response_format: dict[str, Any] | None) -> Completion:
        """Make one attempt; raise :class:`TransportError` on any failure."""
        import aiohttp

        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if response_format is not None:
            body["response_format"] = response_format
        body.update(params)
        if self._reasoning:
            if "max_tokens" in body:
                body["max_completion_tokens"] = body.pop("max_tokens")
            body.pop("temperature", None)
        key = api_key(self.provider)
        headers = {"Authorization": f"Bearer {key}"} if key else None
        session = self._get_session()
        try:
            async with session.post(self.url, data=dumps(body), headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After")) if status != 200 else None
        except asyncio.TimeoutError:
            raise TransportError("timeout", f"no answer within {self.timeout:g}s", True) from None
        except aiohttp.ClientError as exc:
            raise TransportError("connection", f"{type(exc).__name__}: {exc}", True) from None
        except OSError as exc:
            raise TransportError("connection", f"{type(exc).__name__}: {exc}", True) from None
        if status != 200:
            detail = raw[:300].decode("utf-8", "replace")
            try:
                detail = str(loads(raw)["error"]["message"])
            except Exception:  # noqa: BLE001 - any shape of error body is fine
                pass
            raise http_error(status, f"HTTP {status} from {self.url}: {scrub(detail, key)}", retry_after)
        try:
            data = loads(raw)
            choice = data["choices"][0]
            text = choice["message"].get("content")
        except (JSONDecodeError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise TransportError("bad_response", f"unexpected response body from {self.url}", True) from None
        usage = data.get("usage") or {}
        logprobs = choice.get("logprobs")
        return Completion(
            text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
            choice.get("finish_reason"), logprobs if isinstance(logprobs, dict) else None,
        )

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            if self._loop is asyncio.get_running_loop():
                await self._session.close()
        self._session = None
        self._loop = None


def import_litellm() -> Any:
    """Import litellm (slow: seconds) with the offline price map and quiet logging."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import logging

    import litellm

    litellm.suppress_debug_info = True
    # litellm logs every call at INFO; keep run logs readable.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return litellm


def litellm_error(exc: BaseException, secret: str | None = None) -> TransportError:
    """Classify an exception raised by ``litellm.acompletion``."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    message = scrub(f"{type(exc).__name__}: {exc}", secret)[:500]
    retry_after = None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        try:
            retry_after = _retry_after(headers.get("retry-after"))
        except Exception:  # noqa: BLE001
            retry_after = None
    status = getattr(exc, "status_code", None)
    if "Timeout" in names or "APITimeoutError" in names or isinstance(exc, asyncio.TimeoutError):
        return TransportError("timeout", message, True, retry_after, status)
    if "RateLimitError" in names:
        return TransportError("rate_limited", message, True, retry_after, status)
    if "ContextWindowExceededError" in names:
        return TransportError("context_window_exceeded", message, False, None, status)
    if "APIConnectionError" in names:
        return TransportError("connection", message, True, retry_after, status)
    if isinstance(status, int) and 400 <= status < 600:
        return http_error(status, message, retry_after)
    return TransportError("provider_error", message, False, None, status)


class LiteLLMTransport:
    """Everything that is not OpenAI-compatible (Anthropic, Gemini, the embedded model ...)."""

    def __init__(self, provider: dict[str, Any], timeout: float):
        self.provider = provider
        self.model = str(provider.get("model") or "")
        self.api_base = provider.get("api_base") or None
        self.timeout = timeout
        self._litellm: Any = None

    def _module(self) -> Any:
        if self._litellm is None:
            litellm = import_litellm()
            if self.model.startswith("local/"):
                from synthrun.llm.local_provider import register

                register()
            self._litellm = litellm
        return self._litellm

    async def send(self, messages: list[dict[str, Any]], params: dict[str, Any],
                   response_format: dict[str, Any] | None) -> Completion:
        """Make one attempt; raise :class:`TransportError` on any failure."""
        litellm = self._module()
        kwargs: dict[str, Any] = {"timeout": self.timeout, "num_retries": 0, "drop_params": True}
        if self.api_base:
            kwargs["api_base"] = self.api_base
        key = api_key(self.provider)
        if key:
            kwargs["api_key"] = key
        if response_format is not None:
            kwargs["response_format"] = response_format
        kwargs.update(params)
        try:
            resp = await litellm.acompletion(model=self.model, messages=messages, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - litellm raises many types; classify them all
            raise litellm_error(exc, key) from None
        try:
            choice = resp.choices[0]
            text = choice.message.content
        except (AttributeError, IndexError, TypeError):
            raise TransportError("bad_response", f"unexpected response from {self.model}", True) from None
        usage = getattr(resp, "usage", None)
        logprobs = getattr(choice, "logprobs", None)
        if logprobs is not None and hasattr(logprobs, "model_dump"):
            logprobs = logprobs.model_dump()
        return Completion(
            text,
            int(getattr(usage, "prompt_tokens", 0) or 0),
            int(getattr(usage, "completion_tokens", 0) or 0),
            getattr(choice, "finish_reason", None),
            logprobs if isinstance(logprobs, dict) else None,
        )

    async def aclose(self) -> None:
        return None
