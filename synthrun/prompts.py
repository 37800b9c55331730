"""Prompts are data: YAML files under ``prompts/`` with Jinja2 ``system`` and ``user`` templates.

Text that comes from documents, tool specs or records is embedded with the ``delimit`` filter
(``{{ text | delimit }}``, or ``{{ code | delimit("`") }}`` for a code fence). It puts the text
between two fence lines made of a run of the fence character longer than any run of it inside
the text, so the text can never close its own block: a passage containing ``\"\"\"`` gets
``\"\"\"\"`` fences, and whatever it says after its ``\"\"\"`` still reads as passage. Text
without the fence character renders exactly as the classic ``\"\"\"`` block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from synthrun.errors import ConfigError
from synthrun.paths import prompts_dir


class PromptError(ConfigError):
    """A prompt that cannot be found or rendered."""


def delimit(text: Any, char: str = '"', minimum: int = 3) -> str:
    """``text`` between fence lines of ``char`` that the text itself cannot contain (see module docstring)."""
    text = "" if text is None else str(text)
    if len(char) != 1:
        raise PromptError(f"delimit: the fence character must be one character, got {char!r}")
    runs = re.findall(f"{re.escape(char)}+", text)
    fence = char * max(minimum, max((len(r) for r in runs), default=0) + 1 if runs else minimum)
    return f"{fence}\n{text}\n{fence}"


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, StrictUndefined

    env = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
    env.filters["delimit"] = delimit
    return env


@lru_cache(maxsize=256)
def _template(source: str):
    return _environment().from_string(source)


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
        from jinja2 import TemplateError, UndefinedError

        data = self.get(name)
        messages = []
        for role in ("system", "user"):
            if role in data and data[role].strip():
                try:
                    text = _template(data[role]).render(**variables)
                except UndefinedError as exc:
                    raise PromptError(f"prompt '{name}' ({role}): {exc}") from None
                except TemplateError as exc:
                    raise PromptError(f"prompt '{name}' ({role}): {exc}") from None
                messages.append({"role": role, "content": text.strip()})
        return messages
