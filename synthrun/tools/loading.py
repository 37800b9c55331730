"""Load a tool spec from a file or parsed data: find the file, read it, detect its format, parse it.

The readers of each format live in :mod:`synthrun.tools.parsers` (and :mod:`synthrun.tools.bfcl`);
the model they produce in :mod:`synthrun.tools.spec`. This module sits on top of both, so the
model never imports a reader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synthrun.tools import parsers
from synthrun.tools.bfcl import is_bfcl, parse_json_lines, read_bfcl
from synthrun.tools.spec import SpecError, ToolSet, ToolSpec


def resolve_spec_path(path: str | Path) -> Path:
    """Find a spec file: as given, then inside the shipped ``recipes/`` (and ``recipes/data/``).

    So ``recipes/data/hdf5_tools.json`` works from a checkout and from an installed wheel.
    """
    from synthrun.paths import recipes_dir

    p = Path(path).expanduser()
    if p.is_file():
        return p
    if not p.is_absolute():
        rel = Path(*p.parts[1:]) if p.parts and p.parts[0] == "recipes" else p
        for candidate in (recipes_dir() / rel, recipes_dir() / "data" / rel):
            if candidate.is_file():
                return candidate
    raise SpecError(f"tool spec not found: {path} (looked in the working directory and {recipes_dir()})")


def read_spec_file(path: str | Path) -> Any:
    """Read a JSON or YAML spec file into Python data."""
    p = resolve_spec_path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpecError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" or p.suffix.lower() in (".jsonl", ".ndjson"):  # JSON Lines (BFCL)
            return parse_json_lines(text, str(p))
        if p.suffix.lower() == ".json":
            raise SpecError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise SpecError(f"{p}: neither JSON nor YAML") from None


def detect_format(data: Any) -> str:
    """Guess the format of parsed spec data: ``openapi``, ``openai``, ``mcp``, ``bfcl`` or ``synthrun``."""
    if is_bfcl(data):
        return "bfcl"
    if isinstance(data, dict):
        if "openapi" in data or "swagger" in data:
            return "openapi"
        items = data.get("tools")
        if items is None and "functions" in data:
            return "openai"
    else:
        items = data
    if isinstance(items, list) and items:
        first = next((t for t in items if isinstance(t, dict)), {})
        if first.get("type") == "function" or "function" in first:
            return "openai"
        if "inputSchema" in first or "input_schema" in first:
            return "mcp"
        if "tool_id" in first or isinstance(first.get("parameters"), list):
            return "synthrun"
        if isinstance(first.get("parameters"), dict):
            return "openai"
    if isinstance(data, dict) and isinstance(items, list):
        return "synthrun"
    raise SpecError("cannot tell the spec format: expected an OpenAPI 3 document, an OpenAI 'tools' list, "
                    "an MCP tool list ('inputSchema'), BFCL function docs (JSON Lines) or a synthrun spec ({'name', 'tools': [...]})")


def parse_spec(data: Any, fmt: str = "auto", origin: str = "<spec>") -> ToolSet:
    """Normalise parsed spec data of any supported format into a :class:`ToolSet`."""
    fmt = detect_format(data) if fmt in ("auto", None) else fmt
    readers = {"synthrun": parsers.read_synthrun, "openai": parsers.read_openai, "mcp": parsers.read_mcp,
               "openapi": parsers.read_openapi, "bfcl": read_bfcl}
    if fmt not in readers:
        raise SpecError(f"{origin}: unknown spec format {fmt!r} (use auto, {', '.join(readers)})")
    toolset = readers[fmt](data, origin)
    toolset.source = origin
    return toolset


def load_spec(source: str | Path | dict[str, Any] | list[Any], fmt: str = "auto") -> ToolSet:
    """Load a tool spec from a file path (JSON or YAML) or already parsed data."""
    if isinstance(source, (dict, list)):
        return parse_spec(source, fmt, "<spec>")
    path = resolve_spec_path(source)
    return parse_spec(read_spec_file(path), fmt, str(path))


def tools_from_dicts(items: list[dict[str, Any]]) -> list[ToolSpec]:
    """Rebuild :class:`ToolSpec` objects stored in records (``ToolExample.tools``).

    Records hold the project's tool dumps; an OpenAI or MCP tool list (e.g. a labelled row loaded
    as is) is read with the spec readers instead.
    """
    if items and any(isinstance(d, dict) and ("function" in d or "inputSchema" in d or "input_schema" in d)
                     for d in items):
        return parse_spec(items, "auto", "ToolExample.tools").tools
    return [ToolSpec.model_validate(d) for d in items]
