"""Prompts are data: YAML files under ``prompts/`` with Jinja2 ``system`` and ``user`` templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from synthrun.paths import prompts_dir


class PromptError(Exception):
    """A prompt that cannot be found or rendered."""


@lru_cache(maxsize=128)
def _load(path: str) -> dict[str, str]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict) or "user" not in data:
        raise PromptError(f"{path}: a prompt file needs a 'user' template (and optionally 'system')")
    return {k: str(v) for k, v in data.items()}


@dataclass
class PromptLibrary:
    """Finds prompt files by name in ``extra_dirs`` first, then the shipped ``prompts/``."""

    extra_dirs: list[Path] = field(default_factory=list)

    def path(self, name: str) -> Path:
        """Return the file of prompt ``name`` (a name like ``qa_generate`` or a path to a .yaml)."""
        candidate = Path(name)
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate
        for folder in [*self.extra_dirs, prompts_dir()]:
            p = Path(folder) / f"{name}.yaml"
            if p.is_file():
                return p
        raise PromptError(f"prompt '{name}' not found in {[str(d) for d in [*self.extra_dirs, prompts_dir()]]}")

    def get(self, name: str) -> dict[str, str]:
        return _load(str(self.path(name)))

    def render(self, name: str, **variables: Any) -> list[dict[str, str]]:
        """Render prompt ``name`` into chat messages."""
        from jinja2 import StrictUndefined, Template, UndefinedError

        data = self.get(name)
        messages = []
        for role in ("system", "user"):
            if role in data and data[role].strip():
                try:
                    text = Template(data[role], undefined=StrictUndefined, keep_trailing_newline=False).render(
                        **variables
                    )
                except UndefinedError as exc:
                    raise PromptError(f"prompt '{name}' ({role}): {exc}") from None
                messages.append({"role": role, "content": text.strip()})
        return messages
