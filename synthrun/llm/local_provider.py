"""litellm adapter for the embedded model: ``litellm.acompletion(model="local/smollm2-135m", ...)``.

:func:`register` adds provider ``local`` to ``litellm.custom_provider_map``; after that, stages talk
to the in-process SmolLM2 engine exactly as to a remote provider, including
``response_format={"type": "json_schema", ...}`` (decoded under the schema's constraint) and
``{"type": "json_object"}``.

litellm (and torch, through the engine) are imported only when :func:`register` / a call runs.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

PROVIDER = "local"
DEFAULT_MODEL = "smollm2-135m"
_register_lock = threading.Lock()
_handler: Any = None


def _schema_from_response_format(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema asked for by an OpenAI-style ``response_format`` (None for plain text)."""
    from synthrun.llm.constrain import JSON_OBJECT_SCHEMA

    if response_format is None:
        return None
    if isinstance(response_format, type) and hasattr(response_format, "model_json_schema"):  # a pydantic model
        schema: dict[str, Any] = response_format.model_json_schema()
        return schema
    if hasattr(response_format, "model_dump"):
        response_format = response_format.model_dump()
    if not isinstance(response_format, dict):
        raise ValueError(f"response_format must be a dict, got {type(response_format).__name__}")
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return JSON_OBJECT_SCHEMA
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        found = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(found, dict):
            found = response_format.get("schema")
        if not isinstance(found, dict):
            raise ValueError("response_format json_schema has no 'schema' object")
        return found
    raise ValueError(f"unsupported response_format type {kind!r}")


def gguf_for_model(model: str) -> str | None:
    """The GGUF file named by ``local/<path>.gguf`` (e.g. a fine-tune's export); None: the embedded model."""
    name = model.split("/", 1)[1] if model.startswith(f"{PROVIDER}/") else model
    return name if name.lower().endswith(".gguf") else None


def _engine_kwargs(messages: list[Any], optional_params: dict[str, Any]) -> dict[str, Any]:
    params = dict(optional_params or {})
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens") or 256
    temperature = params.get("temperature")
    return {
        "messages": messages,
        "json_schema": _schema_from_response_format(params.get("response_format")),
        "max_tokens": int(max_tokens),
        "temperature": 0.7 if temperature is None else float(temperature),
        "seed": params.get("seed"),
        "top_p": params.get("top_p", 1.0),
        "top_k": params.get("top_k", 50),
        "frequency_penalty": params.get("frequency_penalty"),
        "presence_penalty": params.get("presence_penalty"),
        "stop": params.get("stop"),
    }


def _fill_response(model_response: Any, model: str, result: Any) -> Any:
    import litellm

    choice = model_response.choices[0]
    choice.message.content = result.text
    choice.finish_reason = result.finish_reason
    model_response.model = f"{PROVIDER}/{model}" if not model.startswith(f"{PROVIDER}/") else model
    model_response.id = f"chatcmpl-local-{uuid.uuid4().hex[:24]}"
    model_response.created = int(time.time())
    usage = litellm.Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )
    model_response.usage = usage
    return model_response


def _make_handler() -> Any:
    from litellm import CustomLLM  # type: ignore[attr-defined]

    from synthrun.llm.local_engine import LocalEngine

    class LocalLLM(CustomLLM):
        """litellm custom provider answering from the in-process :class:`LocalEngine`."""

        def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            engine = LocalEngine.get(gguf_for_model(model))
            result = engine.generate(**_engine_kwargs(messages, kwargs.get("optional_params", {})))
            return _fill_response(kwargs["model_response"], model, result)

        async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
            import asyncio

            loop = asyncio.get_running_loop()
            path = gguf_for_model(model)
            key = str(Path(path).resolve()) if path else ""
            engine: Any = (LocalEngine._instances.get(key)
                           or await loop.run_in_executor(None, LocalEngine.get, path))
            result = await engine.agenerate(**_engine_kwargs(messages, kwargs.get("optional_params", {})))
            return _fill_response(kwargs["model_response"], model, result)

    return LocalLLM()


def register() -> Any:
    """Registers provider ``local`` with litellm (idempotent); returns the handler instance."""
    global _handler
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    with _register_lock:
        if _handler is None:
            _handler = _make_handler()
        entries = [e for e in litellm.custom_provider_map if e.get("provider") != PROVIDER]
        entries.append({"provider": PROVIDER, "custom_handler": _handler})
        litellm.custom_provider_map = entries
        if hasattr(litellm, "_custom_providers") and PROVIDER not in litellm._custom_providers:
            litellm._custom_providers.append(PROVIDER)
        from litellm.utils import custom_llm_setup

        custom_llm_setup()  # type: ignore[no-untyped-call]  # adds "local" to litellm.provider_list now rather than at the first call
        # Free and local: known to litellm's price table, so completion_cost() answers 0.
        litellm.register_model(
            {
                f"{PROVIDER}/{DEFAULT_MODEL}": {
                    "input_cost_per_token": 0.0,
                    "output_cost_per_token": 0.0,
                    "cache_creation_input_token_cost": 0.0,
                    "cache_read_input_token_cost": 0.0,
                    "litellm_provider": PROVIDER,
                    "mode": "chat",
                    "max_input_tokens": 8192,
                    "max_output_tokens": 8192,
                    "max_tokens": 8192,
                }
            }
        )
    return _handler


class LocalTransport:
    """The client's transport for ``local/...`` models: calls the in-process engine directly.

    Same answers as going through litellm (:func:`register`), without litellm's import time and
    per-call overhead. Provider keys ``threads``, ``batch_size`` and ``quantize`` configure the
    engine (see :class:`synthrun.llm.local_engine.LocalEngine`).
    """

    def __init__(self, provider: dict[str, Any], timeout: float):
        self.provider = provider
        self.timeout = timeout
        self.settings = {
            "threads": provider.get("threads") or None,
            "max_batch": provider.get("batch_size") or None,
            "quantize": provider.get("quantize"),
        }
        self._engine: Any = None

    async def _get_engine(self) -> Any:
        import asyncio

        from synthrun.llm.local_engine import LocalEngine

        if self._engine is None:
            loop = asyncio.get_running_loop()
            path = gguf_for_model(str(self.provider.get("model") or ""))  # local/<file.gguf>: that model
            self._engine = await loop.run_in_executor(None, lambda: LocalEngine.get(path, **self.settings))
        return self._engine

    async def send(self, messages: list[dict[str, Any]], params: dict[str, Any],
                   response_format: dict[str, Any] | None) -> Any:
        """One answer from the engine; raises the client's ``TransportError`` on failure."""
        import asyncio

        from synthrun.llm.transport import Completion, TransportError

        try:
            engine = await self._get_engine()
            kwargs = _engine_kwargs(messages, {**params, "response_format": response_format})
            result = await asyncio.wait_for(engine.agenerate(**kwargs), self.timeout)
        except asyncio.TimeoutError:
            raise TransportError("timeout", f"no answer from the local model within {self.timeout:g}s", True) from None
        except ValueError as exc:
            reason = "context_window_exceeded" if "context" in str(exc) else "provider_error"
            raise TransportError(reason, f"local model: {exc}", False) from None
        except (RuntimeError, OSError) as exc:
            raise TransportError("provider_error", f"local model: {type(exc).__name__}: {exc}", False) from None
        return Completion(result.text, result.prompt_tokens, result.completion_tokens, result.finish_reason)

    async def aclose(self) -> None:
        return None
