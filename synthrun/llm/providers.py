"""The supported LLM providers with set-up hints, for ``synthrun providers``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthrun.paths import conf_dir

# How to get each provider running; keyed by the model string's prefix.
_HINTS: dict[str, str] = {
    "local": "Nothing to set up: the embedded SmolLM2-135M runs in-process, offline.",
    "openai": "export OPENAI_API_KEY=...  (optional OPENAI_API_BASE for a proxy)",
    "anthropic": "export ANTHROPIC_API_KEY=...",
    "gemini": "export GEMINI_API_KEY=...",
    "ollama_chat": "ollama serve && ollama pull llama3.2  (OLLAMA_API_BASE if not on 127.0.0.1:11434)",
    "ollama": "ollama serve && ollama pull llama3.2  (OLLAMA_API_BASE if not on 127.0.0.1:11434)",
    "hosted_vllm": (
        "vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000  (or any OpenAI-compatible server; "
        "set provider.api_base / VLLM_API_BASE and provider.model=hosted_vllm/MODEL)"
    ),
}


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
        ``api_key_env``, ``concurrency``, ``route`` (``http`` for the built-in OpenAI-compatible
        client, ``litellm`` or ``in-process``), ``setup`` (hint) and ``description``.
    """
    from synthrun.llm.transport import is_openai_compatible

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
        route = "in-process" if prefix == "local" else ("http" if is_openai_compatible(cfg) else "litellm")
        rows.append(
            {
                "name": path.stem,
                "model": model,
                "api_base": api_base,
                "api_key_env": cfg.get("api_key_env"),
                "concurrency": cfg.get("concurrency"),
                "route": route,
                "setup": _HINTS.get(prefix, "see https://docs.litellm.ai/docs/providers"),
                "description": _comment(path),
            }
        )
    return rows
