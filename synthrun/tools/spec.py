"""The normalised tool model every spec format is read into.

A :class:`ToolSet` holds :class:`ToolSpec` objects. Each parameter and return value has a
``type``: a JSON type (``string``, ``integer``, ``number``, ``boolean``, ``array``,
``object``, ``null``), ``any``, or a *semantic type* such as ``file_handle`` or
``object_path``. Semantic types make the dependency graph precise; they are declared in the
project format's top-level ``types`` block (:class:`TypeDef`) or, in JSON Schema based formats,
with an ``x-type`` key on a property. ``a|b`` is a union. A *handle* type names an opaque value
that only a tool can produce (a user cannot type it), so a call that needs one must be fed
by an earlier step.

Names are made safe for ``^[a-zA-Z0-9_-]{1,64}$`` (what OpenAI-style function calling
accepts); :attr:`ToolSet.name_map` records safe name -> original name.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthrun.errors import StageError

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")
SEMANTIC_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
Complexity = Literal["simple", "medium", "complex"]


class SpecError(StageError):
    """A spec that cannot be read; the message names the file, the tool and the field."""


class TypeDef(BaseModel):
    """A semantic type.

    Attributes:
        base: The JSON type its values have on the wire (handles are strings).
        handle: True for opaque values only a tool produces (file handles, session ids ...).
        is_a: Broader semantic types a value of this type also is (a file is also a group).
        items: For ``base: array``, the semantic or JSON type of the elements.
        properties: For ``base: object``, the semantic or JSON type of known fields.
        description: What the values are.
    """

    model_config = ConfigDict(extra="forbid")

    base: Literal["string", "integer", "number", "boolean", "array", "object", "null"] = "string"
    handle: bool = False
    is_a: list[str] = Field(default_factory=list)
    items: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    description: str = ""


class ParamSpec(BaseModel):
    """One input parameter of a tool.

    Attributes:
        name: The argument name.
        type: JSON type, ``any``, a semantic type, or a ``|`` union of those.
        required: Whether a call must pass it.
        default: Value used when it is omitted.
        description: What it is.
        enum: Allowed values, if restricted.
        json_schema: The JSON Schema of the value (derived from ``type`` when the spec gave none).
        location: Where an HTTP operation sends it (``path``, ``query``, ``header``, ``body``).
    """

    model_config = ConfigDict(extra="allow")

    name: str
    type: str = "any"
    required: bool = False
    default: Any = None
    description: str = ""
    enum: list[Any] | None = None
    json_schema: dict[str, Any] = Field(default_factory=dict)
    location: str | None = None


class ReturnSpec(BaseModel):
    """What a tool returns."""

    model_config = ConfigDict(extra="allow")

    type: str = "any"
    description: str = ""
    json_schema: dict[str, Any] | None = None


class ToolSpec(BaseModel):
    """One tool, whatever format it was read from.

    Attributes:
        name: Safe name (``^[a-zA-Z0-9_-]{1,64}$``) used in calls.
        original_name: The name in the source spec.
        tool_id: Stable id (the project format's ``tool_id``; else the safe name).
        category: Group used for distractor sampling and summaries.
        description: What the tool does.
        parameters: Inputs, in declaration order.
        returns: The output.
        examples: Example calls from the spec (free-form dicts, e.g. ``{"args": {...}, "result": ...}``).
        complexity: ``simple`` | ``medium`` | ``complex``; ``auto`` generation picks the mode from it.
        executor: Name of the executor that really runs it (e.g. ``hdf5``), or None.
        source_format: The format it was read from.
        http: For OpenAPI operations: ``method``, ``path`` and ``server``.
        types: The semantic types this tool mentions (so a tool is self-contained).
    """

    model_config = ConfigDict(extra="allow")

    name: str
    original_name: str = ""
    tool_id: str = ""
    category: str = "general"
    description: str = ""
    parameters: list[ParamSpec] = Field(default_factory=list)
    returns: ReturnSpec = Field(default_factory=ReturnSpec)
    examples: list[Any] = Field(default_factory=list)
    complexity: Complexity = "medium"
    executor: str | None = None
    source_format: str = "synthrun"
    http: dict[str, Any] | None = None
    types: dict[str, TypeDef] = Field(default_factory=dict)

    def param(self, name: str) -> ParamSpec | None:
        return next((p for p in self.parameters if p.name == name), None)

    @property
    def required(self) -> list[str]:
        return [p.name for p in self.parameters if p.required]

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema object of the arguments (what OpenAI ``parameters`` holds)."""
        props = {p.name: p.json_schema or {} for p in self.parameters}
        schema: dict[str, Any] = {"type": "object", "properties": props}
        if self.required:
            schema["required"] = self.required
        return schema

    def to_openai(self) -> dict[str, Any]:
        """The tool as an OpenAI / Transformers ``{"type": "function", "function": {...}}`` entry."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.input_schema()}}

    def documentation(self) -> dict[str, Any]:
        """Compact API documentation (Gorilla style) shown to the model and stored with examples."""
        params = []
        for p in self.parameters:
            entry: dict[str, Any] = {"name": p.name, "type": p.type, "required": p.required,
                                     "description": p.description}
            if p.enum:
                entry["enum"] = p.enum
            if not p.required and p.default is not None:
                entry["default"] = p.default
            params.append(entry)
        return {"name": self.name, "category": self.category, "description": self.description,
                "parameters": params, "returns": {"type": self.returns.type, "description": self.returns.description}}

    def type_system(self) -> TypeSystem:
        return TypeSystem(self.types)


class ToolSet(BaseModel):
    """All tools of one spec.

    Attributes:
        name: The spec's name (title of an OpenAPI document, ``name`` of a project spec ...).
        format: The format it was read from.
        tools: The tools, in spec order.
        types: Semantic types declared by the spec.
        name_map: Safe tool name -> name in the source spec, for every tool.
        source: Where it was read from.
    """

    name: str = "tools"
    format: str = "synthrun"
    tools: list[ToolSpec] = Field(default_factory=list)
    types: dict[str, TypeDef] = Field(default_factory=dict)
    name_map: dict[str, str] = Field(default_factory=dict)
    source: str = ""

    def get(self, name: str) -> ToolSpec:
        for tool in self.tools:
            if tool.name == name:
                return tool
        raise KeyError(f"no tool named {name!r} in spec {self.name!r} (tools: {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tools]

    def type_system(self) -> TypeSystem:
        return TypeSystem(self.types)

    def summary(self) -> dict[str, Any]:
        cats: dict[str, int] = {}
        for t in self.tools:
            cats[t.category] = cats.get(t.category, 0) + 1
        renamed = {k: v for k, v in self.name_map.items() if k != v}
        return {"name": self.name, "format": self.format, "tools": len(self.tools), "categories": cats,
                "complexity": {c: sum(t.complexity == c for t in self.tools) for c in ("simple", "medium", "complex")},
                "renamed": renamed, "source": self.source}


# ---------------------------------------------------------------------------- types


def type_parts(type_str: str | None) -> list[str]:
    """The members of a ``a|b`` union (``any`` for an empty type)."""
    parts = [p.strip() for p in str(type_str or "any").split("|") if p.strip()]
    return parts or ["any"]


class TypeSystem:
    """Answers questions about semantic types: base JSON type, handles, subtyping, compatibility."""

    def __init__(self, types: dict[str, TypeDef] | None = None):
        self.types = dict(types or {})

    def get(self, name: str) -> TypeDef | None:
        if name in JSON_TYPES or name == "any":
            return None
        known = self.types.get(name)
        if known is not None:
            return known
        if name.endswith("_handle"):
            return TypeDef(base="string", handle=True)
        if name.endswith("_list"):
            return TypeDef(base="array")
        return TypeDef(base="string")

    def base(self, name: str) -> str:
        """The JSON type of ``name`` (``any`` stays ``any``)."""
        if name in JSON_TYPES or name == "any":
            return name
        return self.get(name).base  # type: ignore[union-attr]

    def is_semantic(self, name: str) -> bool:
        return name not in JSON_TYPES and name != "any"

    def is_handle(self, type_str: str) -> bool:
        """True when every member of the union is a handle (a user cannot supply it)."""
        parts = type_parts(type_str)
        return all(self.is_semantic(p) and self.get(p).handle for p in parts)  # type: ignore[union-attr]

    def ancestors(self, name: str) -> set[str]:
        """``name`` and every type it ``is_a``, transitively."""
        seen = {name}
        todo = [name]
        while todo:
            cur = todo.pop()
            td = self.types.get(cur)
            for parent in td.is_a if td else []:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    def item_type(self, name: str) -> str | None:
        td = self.get(name)
        return td.items if td else None

    def accepts(self, param_type: str, value_type: str) -> float:
        """How well a value of ``value_type`` fits a parameter of ``param_type`` (0..1).

        1.0: every member of the value's union fits; 0.8: some do; 0.0: none (for semantic
        types on both sides). For plain JSON types the answer is 1.0 when the JSON types agree,
        which the graph weighs down because it says little on its own.
        """
        want = type_parts(param_type)
        have = type_parts(value_type)
        fits = [any(self._fits(w, h) for w in want) for h in have]
        if all(fits):
            return 1.0
        if any(fits):
            return 0.8
        return 0.0

    def _fits(self, want: str, have: str) -> bool:
        if want == "any" or have == "any":
            return True
        if self.is_semantic(want) and self.is_semantic(have):
            return want in self.ancestors(have)
        base_w, base_h = self.base(want), self.base(have)
        if self.is_semantic(want) and self.get(want).handle:  # type: ignore[union-attr]
            return False  # a plain value is never a handle
        if self.is_semantic(have) and self.get(have).handle:  # type: ignore[union-attr]
            return False
        return base_w == base_h or (base_w == "number" and base_h == "integer")

    def schema_for(self, type_str: str, items: str | None = None) -> dict[str, Any]:
        """JSON Schema for values of ``type_str``."""
        schemas = []
        for part in type_parts(type_str):
            if part == "any":
                return {}
            base = self.base(part)
            s: dict[str, Any] = {"type": base}
            item = items if base == "array" and items else (self.item_type(part) if self.is_semantic(part) else None)
            if base == "array":
                s["items"] = self.schema_for(item) if item else {}
            schemas.append(s)
        uniq = []
        for s in schemas:
            if s not in uniq:
                uniq.append(s)
        return uniq[0] if len(uniq) == 1 else {"anyOf": uniq}

    def closure(self, type_strs: list[str]) -> dict[str, TypeDef]:
        """The declared types mentioned by ``type_strs`` and everything they refer to."""
        out: dict[str, TypeDef] = {}
        todo = [p for t in type_strs for p in type_parts(t)]
        while todo:
            name = todo.pop()
            if name in out or name not in self.types:
                continue
            td = self.types[name]
            out[name] = td
            todo.extend(td.is_a)
            if td.items:
                todo.extend(type_parts(td.items))
            for v in td.properties.values():
                todo.extend(type_parts(v))
        return out


def type_from_schema(schema: dict[str, Any] | None) -> str:
    """The type string of a JSON Schema (``x-type`` wins; ``type`` lists become unions)."""
    if not isinstance(schema, dict) or not schema:
        return "any"
    x_type = schema.get("x-type")
    if isinstance(x_type, str):
        return x_type
    t = schema.get("type")
    if isinstance(t, list):
        return "|".join(str(x) for x in t) or "any"
    if isinstance(t, str):
        return t
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            parts = [type_from_schema(s) for s in schema[key]]
            parts = [p for p in dict.fromkeys(parts) if p != "null"] or ["null"]
            return "|".join(parts)
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    if "enum" in schema and schema["enum"]:
        return {str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(schema["enum"][0]), "any")
    return "any"


# ---------------------------------------------------------------------------- names


def safe_name(name: str, taken: set[str] | None = None) -> str:
    """``name`` made to match ``^[a-zA-Z0-9_-]{1,64}$`` and unique among ``taken``."""
    base = _UNSAFE.sub("_", str(name)).strip("_") or "tool"
    base = re.sub(r"_+", "_", base)[:64]
    if taken is None or base not in taken:
        return base
    i = 2
    while True:
        suffix = f"_{i}"
        candidate = base[: 64 - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        i += 1
