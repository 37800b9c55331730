"""Per-token prices without importing litellm: read the price table litellm ships as JSON."""

from __future__ import annotations

import importlib.util
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Models that run on the user's own hardware cost nothing per token.
FREE_PREFIXES = ("local/", "ollama/", "ollama_chat/", "hosted_vllm/", "lm_studio/", "llamafile/")
_TABLE_FILE = "model_prices_and_context_window_backup.json"


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / _TABLE_FILE
    try:
        with open(path, encoding="utf-8") as fh:
            table: dict[str, Any] = json.load(fh)
            return table
    except (OSError, ValueError):
        log.debug("no litellm price table at %s", path)
        return {}


@lru_cache(maxsize=256)
def _lookup(model: str) -> tuple[float, float] | None:
    table = _table()
    provider, _, bare = model.partition("/")
    for name in (model, bare) if bare else (model,):
        entry = table.get(name)
        if entry and "input_cost_per_token" in entry:
            # Prefer an entry from the same provider when only the bare name matched.
            if name == bare and entry.get("litellm_provider") not in (provider, None) and f"{provider}/{bare}" in table:
                continue
            return float(entry.get("input_cost_per_token") or 0.0), float(entry.get("output_cost_per_token") or 0.0)
    return None


def token_prices(provider: dict[str, Any]) -> tuple[float, float]:
    """USD per input token and per output token for a provider config.

    The provider's ``price_in``/``price_out`` (USD per 1M tokens) win; self-hosted and local
    models cost 0; otherwise litellm's price table; unknown models cost 0.

    Args:
        provider: The provider dict (``model``, optional ``price_in``/``price_out``).

    Returns:
        ``(usd_per_prompt_token, usd_per_completion_token)``.
    """
    model = str(provider.get("model") or "")
    p_in, p_out = provider.get("price_in"), provider.get("price_out")
    if p_in is not None or p_out is not None:
        return float(p_in or 0.0) / 1e6, float(p_out or 0.0) / 1e6
    if model.startswith(FREE_PREFIXES):
        return 0.0, 0.0
    found = _lookup(model)
    if found is None:
        log.debug("no price known for %s; counting its cost as 0", model)
        return 0.0, 0.0
    return found
