"""The simulated executor: for tools without a real backend, a value shaped by the ``returns`` schema.

Values are deterministic (seeded by tool and arguments). When the spec has an example with
the same arguments and a ``result``/``output``, that is returned instead. Steps it runs are
recorded with ``executor="simulated"`` (and ``simulated: true``), never as real results.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any, ClassVar

from synthrun.tools.executors.base import Executor, Session, ToolCallError
from synthrun.tools.spec import ToolSpec, TypeSystem, type_parts

_WORDS = ("alpha", "bravo", "delta", "echo", "kilo", "lima", "nova", "orbit", "pixel", "quartz")


_NO_VALUE = object()


def simulate(schema: dict[str, Any] | None, type_str: str, ts: TypeSystem, rng: random.Random,
             label: str = "value", depth: int = 0) -> Any:
    """A value matching ``schema`` (JSON Schema) or, when that says no more than its JSON type,
    the semantic ``type_str`` (a handle becomes ``sim-<type>-<n>``)."""
    first = type_parts(type_str)[0]
    trivial = not isinstance(schema, dict) or set(schema) <= {"type", "items", "description"}
    if ts.is_semantic(first) and (trivial or ts.get(first).handle):  # type: ignore[union-attr]
        schema = None
    if isinstance(schema, dict) and schema:
        value = _from_schema(schema, ts, rng, label, depth)
        if value is not _NO_VALUE:
            return value
    return _from_type(first, ts, rng, label, depth)


def _from_schema(schema: dict[str, Any], ts: TypeSystem, rng: random.Random, label: str, depth: int) -> Any:
    """A value for a JSON Schema, or ``_NO_VALUE`` when the schema names no type it knows."""
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            options = [s for s in schema[key] if isinstance(s, dict) and s.get("type") != "null"] or schema[key]
            return simulate(options[0], "any", ts, rng, label, depth)
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        if depth > 3 or not props:
            return {"status": "ok"}
        return {k: simulate(v, "any", ts, rng, k, depth + 1) for k, v in props.items()}
    if t == "array":
        n = 0 if depth > 3 else rng.randint(1, 3)
        return [simulate(schema.get("items") or {}, "any", ts, rng, label, depth + 1) for _ in range(n)]
    if t in ("integer", "number", "boolean", "string", "null"):
        return _scalar(t, schema, rng, label)
    return _NO_VALUE


def _from_type(part: str, ts: TypeSystem, rng: random.Random, label: str, depth: int) -> Any:
    """A value for a (semantic or JSON) type name."""
    td = ts.get(part) if ts.is_semantic(part) else None
    if td is not None:
        if td.handle:
            return f"sim-{part}-{rng.randint(1000, 9999)}"
        if td.base == "array":
            return [simulate(None, td.items or "string", ts, rng, label, depth + 1) for _ in range(rng.randint(1, 3))]
        if td.base == "object":
            if td.properties and depth <= 3:
                return {k: simulate(None, v, ts, rng, k, depth + 1) for k, v in td.properties.items()}
            return {"status": "ok", "summary": f"simulated {part}"}
        return _scalar(td.base, {}, rng, part)
    if part in ("any", "object"):
        return {"status": "ok"}
    if part == "array":
        return [_scalar("string", {}, rng, label)]
    return _scalar(part, {}, rng, label)


def _scalar(t: str, schema: dict[str, Any], rng: random.Random, label: str) -> Any:
    if t == "integer":
        lo = int(schema.get("minimum", 0))
        return rng.randint(lo, max(lo, int(schema.get("maximum", lo + 100))))
    if t == "number":
        return round(rng.uniform(float(schema.get("minimum", 0)), float(schema.get("maximum", 100))), 3)
    if t == "boolean":
        return rng.random() < 0.5
    if t == "null":
        return None
    fmt = schema.get("format")
    if fmt == "date-time":
        return f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T12:00:00Z"
    if fmt == "date":
        return f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
    if fmt in ("uri", "url"):
        return f"https://example.com/{rng.choice(_WORDS)}"
    if fmt == "email":
        return f"{rng.choice(_WORDS)}@example.com"
    return f"{label}_{rng.choice(_WORDS)}"


class SimulatedExecutor(Executor):
    """Answers every tool with a value shaped by its ``returns`` schema (marked simulated)."""

    name: ClassVar[str] = "simulated"
    real: ClassVar[bool] = False

    def supports(self, tool: ToolSpec) -> bool:
        return True

    def open(self, env: dict[str, Any]) -> SimulatedSession:
        return SimulatedSession()


class SimulatedSession(Session):
    executor = "simulated"

    def call(self, tool: ToolSpec, args: dict[str, Any]) -> Any:
        for p in tool.parameters:
            if p.required and p.name not in args:
                raise ToolCallError(f"missing required argument {p.name!r}")
        for example in tool.examples:
            if isinstance(example, dict) and example.get("args") == args:
                for key in ("result", "output"):
                    if key in example:
                        return example[key]
        seed = hashlib.sha256(f"{tool.name}\x1f{json.dumps(args, sort_keys=True, default=str)}".encode()).hexdigest()
        rng = random.Random(int(seed[:12], 16))
        return simulate(tool.returns.json_schema, tool.returns.type, tool.type_system(), rng, tool.name)
