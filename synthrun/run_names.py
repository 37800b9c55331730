"""Run and sweep folder names: built from the overrides that change the data, and nothing else.

The run folder name (and so ``provenance.run_id``) is the sorted list of the command-line overrides
like Hydra's ``override_dirname``, minus settings that only change how calls are made (``api_base``,
``concurrency``, headers ...) at any depth, including inside dict values (``+curate.llm={...}``), and
minus anything that looks like a secret. Sweeps without ``sweep_name`` get a unique suffix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
from typing import Any

from synthrun.secrets import contains_secret, is_secret_key

_CALL_SETTINGS = {"provider", "llm", "extra"}  # where transport fields are call settings, not stage parameters
#: Keys (at any depth) that decide how failures are accepted, not what a run produces.
_RUN_POLICY_KEYS = {"accept_failures", "max_failure_rate"}


def _non_data(path: str) -> bool:
    from synthrun.llm.provider_config import TRANSPORT_FIELDS  # one list with fingerprints and the cache

    parts = str(path).split(".")
    return (is_secret_key(parts[-1]) or parts[-1] in _RUN_POLICY_KEYS or parts[0] == "budget"
            or (parts[-1] in TRANSPORT_FIELDS and bool(_CALL_SETTINGS.intersection(parts))))


def _strip(value: Any, path: str) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, f"{path}.{k}") for k, v in value.items() if not _non_data(f"{path}.{k}")}
    if isinstance(value, list):
        return [_strip(v, path) for v in value]
    return value


def _item(line: str, exclude: set[str]) -> str | None:
    """The folder-name form of one override, or None when it is not a data parameter."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if contains_secret(line):
        return None
    try:
        (override,) = OverridesParser.create().parse_overrides([line])
    except Exception:  # noqa: BLE001 - Hydra parsed it already; keep the text as Hydra would
        return line
    key = override.key_or_group
    if key in exclude or _non_data(key):
        return None
    value = override._value
    if isinstance(value, (dict, list)):
        stripped = _strip(value, key)
        if stripped != value:
            if not stripped:
                return None
            return override.get_key_element() + "=" + dataclasses.replace(
                override, _value=stripped).get_value_element_as_str()
    return override.input_line or line


def data_dirname(overrides: list[str], exclude_keys: list[str] | None = None) -> str:
    """Like Hydra's ``override_dirname`` (sorted, ``,``-joined), keeping only data parameters."""
    exclude = {str(k) for k in exclude_keys or []}
    items = [_item(str(line), exclude) for line in overrides]
    return ",".join(sorted(i for i in items if i))


def run_name(run_name: str | None, overrides: Any, exclude_keys: Any = None) -> str:
    """A safe folder name: ``run_name`` if given, else the data overrides (``default`` when none).

    ``overrides`` is Hydra's override list (or an already-joined ``override_dirname`` string).
    """
    if overrides is not None and not isinstance(overrides, str):
        overrides = data_dirname(list(overrides), list(exclude_keys or []))
    name = run_name or overrides or "default"
    name = re.sub(r"[^A-Za-z0-9._=,+\-]", "_", str(name))
    if len(name) > 120:
        name = name[:100] + "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return name


def sweep_id() -> str:
    """A readable, unique default sweep folder name: ``YYYYmmdd-HHMMSS-<6 hex>``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()


def register_resolvers() -> None:
    """Register the ``synthrun_run_name`` and ``synthrun_sweep_id`` resolvers the config uses."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("synthrun_run_name"):
        OmegaConf.register_new_resolver("synthrun_run_name", run_name)
    if not OmegaConf.has_resolver("synthrun_sweep_id"):
        # cached, and Hydra copies the cache to every job of a sweep: one folder per sweep
        OmegaConf.register_new_resolver("synthrun_sweep_id", sweep_id, use_cache=True)
