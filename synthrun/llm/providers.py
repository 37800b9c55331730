"""The supported LLM providers with set-up hints, for ``synthrun providers``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthrun.paths import conf_dir


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    return data if isinstance(data, dict) else {}


def _comment(path: Path) -> str:
    """The file's leading comment lines, joined."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(x for x in lines if x)


def provider_table() -> list[dict[str, Any]]:
    """One row per ``conf/provider/*.yaml``: how to select it, its model, and how to set it up.

    Returns:
        Dicts with keys ``name`` (use as ``provider=NAME``), ``model``, ``api_base``,
        ``api_key_env``, ``concurrency``, ``kind`` (its backend, see :mod:`synthrun.llm.backends`),
        ``route`` (``http`` for the built-in OpenAI-compatible client, ``litellm`` or ``in-process``),
        ``setup`` (the backend's hint) and ``description``.
    """
    from synthrun.llm.backends import backend_for
    from synthrun.llm.provider_config import ProviderConfig

    rows = []
    for path in sorted((conf_dir() / "provider").glob("*.yaml")):
        cfg = _read_yaml(path)
        model = str(cfg.get("model") or "")
        prefix = model.split("/", 1)[0]
        api_base = cfg.get("api_base")
        if isinstance(api_base, str) and api_base.startswith("${oc.env:"):
            # ${oc.env:VAR,default} -> "default (env VAR)"
            var, _, default = api_base[len("${oc.env:") : -1].partition(",")
            api_base = f"{default} (env {var})"
        found = backend_for(ProviderConfig.parse({**cfg, "api_base": None}))  # api_base may be an interpolation
        rows.append(
            {
                "name": path.stem,
                "model": model,
                "api_base": api_base,
                "api_key_env": cfg.get("api_key_env"),
                "concurrency": cfg.get("concurrency"),
                "kind": found.kind,
                "route": found.route,
                "setup": found.hint(prefix),
                "description": _comment(path),
            }
        )
    return rows
