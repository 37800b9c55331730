"""Backend ``local``: the embedded engine, called in-process (``local/<model>`` or ``local/<file.gguf>``).

Its engine settings are provider fields: ``batch_size`` (requests decoded together), ``threads``
and ``quantize``. litellm users reach the same engine as ``litellm.acompletion(model="local/...")``
after :func:`synthrun.llm.local_provider.register` (``provider.via_litellm=true`` routes the client
that way too).
"""

from __future__ import annotations

from synthrun.llm.backends import Backend, Transport
from synthrun.llm.provider_config import ProviderConfig


def make(cfg: ProviderConfig) -> Transport:
    from synthrun.llm.local_provider import LocalTransport

    return LocalTransport(cfg.as_dict(), cfg.timeout)


BACKEND = Backend(
    kind="local",
    make=make,
    prefixes=("local",),
    route="in-process",
    hints={"": "Nothing to set up: the embedded SmolLM2-135M runs in-process, offline."},
    where=lambda cfg: "in-process",
)
