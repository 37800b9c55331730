"""Reader for Berkeley Function-Calling Leaderboard (BFCL) function docs.

BFCL ships its function definitions as JSON Lines, one function per line::

    {"name": "fund_account", "description": "...",
     "parameters": {"type": "dict", "properties": {"amount": {"type": "float", ...}}, "required": ["amount"]},
     "response": {"type": "dict", "properties": {"new_balance": {"type": "float"}}}}

The types are Python-flavoured: ``dict`` (an object), ``float`` (a number), ``tuple`` (an
array), ``any`` (no constraint), besides ``integer``, ``string``, ``boolean`` and ``array``.
They are translated to JSON Schema; ``response`` becomes the return schema. The question files
(``{"id", "question", "function": [...]}`` per line) are read too: their functions, once each.
Allowed values BFCL writes into a description (``... [Enum]: ["engage", "release"]``) become an
``enum`` (on the items of an array).
"""

from __future__ import annotations

import json
import re
from typing import Any

from synthrun.tools.parsers import complexity_for, finish_toolset, params_from_schema, returns_from_schema
from synthrun.tools.spec import SpecError, ToolSet, ToolSpec

#: BFCL type -> JSON Schema type (None: no constraint).
TYPES: dict[str, str | None] = {"dict": "object", "float": "number", "tuple": "array", "any": None,
                                "integer": "integer", "int": "integer", "string": "string", "str": "string",
                                "boolean": "boolean", "bool": "boolean", "array": "array", "list": "array",
                                "number": "number", "object": "object", "null": "null"}


_ENUM = re.compile(r"\[Enum\]:\s*(\[[^\]]*\])")


def _enum_from_description(description: Any) -> list[Any] | None:
    m = _ENUM.search(description) if isinstance(description, str) else None
    if not m:
        return None
    try:
        values = json.loads(m.group(1))
    except json.JSONDecodeError:
        return None
    return values if isinstance(values, list) and values else None


def to_json_schema(node: Any, where: str) -> dict[str, Any]:
    """The JSON Schema of a BFCL type node (recursively for ``properties`` and ``items``)."""
    if not isinstance(node, dict):
        raise SpecError(f"{where}: must be an object with a 'type'")
    out = dict(node)
    raw = node.get("type")
    if raw is not None:
        kinds = raw if isinstance(raw, list) else [raw]
        mapped = []
        for kind in kinds:
            key = str(kind).strip().lower()
            if key not in TYPES:
                raise SpecError(f"{where}.type: unknown BFCL type {kind!r} (known: {', '.join(sorted(TYPES))})")
            mapped.append(TYPES[key])
        if None in mapped:
            out.pop("type")
        else:
            out["type"] = mapped[0] if len(mapped) == 1 else list(dict.fromkeys(mapped))
    if isinstance(node.get("properties"), dict):
        out["properties"] = {k: to_json_schema(v, f"{where}.properties.{k}") for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = to_json_schema(node["items"], f"{where}.items")
    if out.get("default") == "None":
        out.pop("default")  # BFCL writes Python's None as the string "None"
    enum = None if "enum" in out else _enum_from_description(out.get("description"))
    if enum:
        if out.get("type") == "array":
            out["items"] = {**(out.get("items") or {}), "enum": enum}
        else:
            out["enum"] = enum
    return out


def is_bfcl(items: Any) -> bool:
    """True when ``items`` (parsed data) looks like BFCL function docs or question entries."""
    items = items if isinstance(items, list) else [items]
    first = next((t for t in items if isinstance(t, dict)), None)
    if first is None:
        return False
    if isinstance(first.get("function"), list) and "question" in first:
        return True
    params = first.get("parameters")
    return "name" in first and (
        (isinstance(params, dict) and params.get("type") == "dict") or isinstance(first.get("response"), dict))


def read_bfcl(data: Any, origin: str) -> ToolSet:
    """Read BFCL function docs: a list of functions (JSON Lines already split), or question entries."""
    items = data if isinstance(data, list) else [data]
    functions: list[tuple[int, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("function"), list):  # a question entry
            for fn in item["function"]:
                name = fn.get("name") if isinstance(fn, dict) else None
                if name not in seen:
                    seen.add(name)
                    functions.append((i, fn))
        else:
            functions.append((i, item))
    tools = []
    names: set[str] = set()
    for i, fn in functions:
        line = f"{origin}: line {i + 1}"
        if not isinstance(fn, dict):
            raise SpecError(f"{line}: each line must be a function object")
        name = fn.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"{line}: name: missing or empty")
        if name in names:
            raise SpecError(f"{line}: name: duplicate function {name!r}")
        names.add(name)
        where = f"{line} ({name!r})"
        params_schema = to_json_schema(fn.get("parameters") or {"type": "dict"}, f"{where}: parameters")
        params_schema.setdefault("type", "object")
        params = params_from_schema(params_schema, f"{where}: parameters")
        response = fn.get("response")
        returns = returns_from_schema(to_json_schema(response, f"{where}: response") if response else None)
        tools.append(ToolSpec(
            name=name, original_name=name, category=name.split(".", 1)[0] if "." in name else "general",
            description=str(fn.get("description") or ""), parameters=params, complexity=complexity_for(len(params)),
            returns=returns, source_format="bfcl",
        ))
    stem = origin.rsplit("/", 1)[-1].split(".", 1)[0] if not origin.startswith("<") else ""
    return finish_toolset(stem or "bfcl_functions", "bfcl", tools, origin)


def parse_json_lines(text: str, origin: str) -> list[Any]:
    """Parse JSON Lines (blank lines skipped); a bad line is a one-line :class:`SpecError`."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise SpecError(f"{origin}: line {n}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    return out
