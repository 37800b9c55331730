"""The transport registry: which code carries a provider's requests, chosen by kind.

Each module in this package is one backend (``http.py``, ``litellm.py``, ``local.py``) and defines
``BACKEND``, a :class:`Backend`. A provider picks its backend by the model string's prefix when a
backend claims it (``openai/...`` -> ``http``, ``local/...`` -> ``local``), else by its ``kind``
(``conf/provider/*.yaml``), else ``litellm``. Adding a backend is one module here plus one provider
yaml naming its ``kind``; nothing else lists backends.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from synthrun.errors import ProviderError
from synthrun.llm.provider_config import ProviderConfig

if TYPE_CHECKING:
    from synthrun.llm.transport import Completion

_KIND = re.compile(r"[a-z][a-z0-9_]*")


class Transport(Protocol):
    """What the client needs from a backend: one attempt per call, and closing its connections."""

    async def send(self, messages: list[dict[str, Any]], params: dict[str, Any],
                   response_format: dict[str, Any] | None) -> Completion: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Backend:
    """One way of reaching a model.

    Attributes:
        kind: Its name, the module's name, and the value of ``provider.kind``.
        make: Builds the transport for a validated provider config.
        prefixes: Model prefixes that always use this backend.
        route: How ``synthrun providers`` describes it (``http``, ``litellm``, ``in-process``).
        hints: Set-up hint per model prefix (``""``: any other prefix of this backend).
        where: Where requests go, for error messages (default: the provider's api_base).
    """

    kind: str
    make: Callable[[ProviderConfig], Transport]
    prefixes: tuple[str, ...] = ()
    route: str = ""
    hints: dict[str, str] = field(default_factory=dict)
    where: Callable[[ProviderConfig], str] | None = None

    def hint(self, prefix: str) -> str:
        return self.hints.get(prefix) or self.hints.get("", "")

    def endpoint(self, cfg: ProviderConfig) -> str:
        if self.where is not None:
            return self.where(cfg)
        return cfg.api_base or "its default endpoint"


@lru_cache(maxsize=1)
def kinds() -> tuple[str, ...]:
    """Every backend module in this package."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


def backend(kind: str) -> Backend:
    """The backend named ``kind``; a one-line :class:`ProviderError` when there is none."""
    if not _KIND.fullmatch(kind) or kind not in kinds():
        raise ProviderError(f"provider.kind={kind!r}: no such backend; use one of {', '.join(kinds())}")
    found: Backend = importlib.import_module(f"{__name__}.{kind}").BACKEND
    return found


def kind_for(cfg: ProviderConfig) -> str:
    """The backend that carries ``cfg``'s requests (see the module docstring for the order)."""
    if cfg.openai_compatible is not None:  # forced either way
        return "http" if cfg.openai_compatible else "litellm"
    if cfg.via_litellm:
        return "litellm"
    for kind in kinds():
        if cfg.prefix and cfg.prefix in backend(kind).prefixes:
            return kind
    if cfg.kind:
        return backend(cfg.kind).kind
    return "litellm"


def backend_for(cfg: ProviderConfig) -> Backend:
    return backend(kind_for(cfg))


def make_transport(cfg: ProviderConfig) -> Transport:
    """The transport for ``cfg`` (imports nothing heavy: backends import their engines on first use)."""
    return backend_for(cfg).make(cfg)
