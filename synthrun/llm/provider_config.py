"""The provider config (``conf/provider/*.yaml`` merged with overrides), typed.

:data:`TRANSPORT_FIELDS` is the one list of provider keys that change how a request travels, not
what the model answers. Run folder names (:mod:`synthrun.run_names`), stage fingerprints
(:mod:`synthrun.runner`) and the answer cache key (:mod:`synthrun.llm.cache`) all leave them out, so
changing one of them resumes a run instead of starting a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from synthrun.errors import ProviderError

#: Provider keys that do not change the answer: where and how requests are sent.
TRANSPORT_FIELDS: frozenset[str] = frozenset({
    "kind", "api_base", "base_url", "api_key_env", "api_key_required", "concurrency", "timeout",
    "max_retries", "retry_backoff", "circuit_breaker", "circuit_breaker_s", "threads", "batch_size",
    "extra_headers", "headers", "default_headers", "organization",
})


def answer_fields(provider: Mapping[str, Any]) -> dict[str, Any]:
    """``provider`` without its :data:`TRANSPORT_FIELDS` (what a fingerprint depends on)."""
    return {k: v for k, v in provider.items() if k not in TRANSPORT_FIELDS}


def whole_number(value: Any, where: str) -> int | None:
    """``value`` as an int >= 1 (None when unset), else a one-line :class:`ProviderError`."""
    if value is None:
        return None
    try:
        number = int(value)
        ok = number >= 1 and float(value) == number
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ProviderError(f"{where}={value!r}: must be a whole number >= 1 (requests in flight at once)")
    return number


class ProviderConfig(BaseModel):
    """One provider's settings; keys it does not declare are kept (``extra``) and ignored.

    Attributes:
        model: litellm-style model string, ``prefix/name`` (the prefix picks the backend when known).
        kind: The backend (``http``, ``litellm``, ``local`` ...: a module in ``synthrun/llm/backends``)
            for models whose prefix does not name one.
        batch_size, threads, quantize: Engine settings of in-process backends.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    model: str
    name: str | None = None
    kind: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None
    api_key_required: bool = False
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 4
    retry_backoff: float = 1.0
    circuit_breaker: int = 10
    circuit_breaker_s: float = 20.0
    json_mode: Literal["schema", "object", "none"] = "schema"
    json_retries: int = 2
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    extra: dict[str, Any] = {}
    price_in: float | None = None
    price_out: float | None = None
    openai_compatible: bool | None = None
    via_litellm: bool = False
    threads: int | None = None
    batch_size: int | None = None
    quantize: str | None = None

    @field_validator("concurrency", "max_retries", "timeout", mode="before")
    @classmethod
    def _unset(cls, value: Any, info: ValidationInfo) -> Any:
        """``null`` (and a timeout of 0) mean the default, as they always did."""
        if value is None or (info.field_name == "timeout" and value == 0):
            return cls.model_fields[str(info.field_name)].default
        return value

    @field_validator("circuit_breaker", mode="before")
    @classmethod
    def _breaker(cls, value: Any) -> Any:
        return value or 0

    @field_validator("extra", mode="before")
    @classmethod
    def _extra(cls, value: Any) -> Any:
        return value or {}

    @classmethod
    def parse(cls, provider: Any) -> ProviderConfig:
        """Validate a provider dict (or a Hydra node); a one-line :class:`ProviderError` if it cannot work."""
        if type(provider).__name__ == "DictConfig":  # a Hydra/OmegaConf node: plain, resolved values
            from omegaconf import OmegaConf

            provider = OmegaConf.to_container(provider, resolve=True)
        plain = dict(provider or {})
        if not plain.get("model"):
            raise ProviderError("provider config has no 'model' (e.g. provider=local or "
                                "provider.model=openai/gpt-4o-mini)")
        whole_number(plain.get("concurrency"), "provider.concurrency")
        if plain.get("json_mode") is not None and plain["json_mode"] not in ("schema", "object", "none"):
            raise ProviderError(f"provider.json_mode={plain['json_mode']!r}: use one of schema, object, none")
        try:
            return cls.model_validate(plain)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err.get("loc", ()))
            raise ProviderError(f"provider.{where}={err.get('input')!r}: {err.get('msg')}") from None

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict, undeclared keys included (what transports read)."""
        return self.model_dump(exclude_unset=True)

    @property
    def prefix(self) -> str:
        """The model string's routing prefix (``openai`` in ``openai/gpt-4o``; "" when none)."""
        return self.model.split("/", 1)[0] if "/" in self.model else ""
