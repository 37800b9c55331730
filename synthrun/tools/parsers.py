"""Readers for the four spec formats; each returns a :class:`~synthrun.tools.spec.ToolSet`.

* ``synthrun``: ``{"name", "types": {...}, "tools": [{"tool_id", "name", "category", "description",
  "parameters": [{"name", "type", "required", "default", "description", "enum"}], "returns":
  {"type", "description"}, "examples", "complexity", "executor"}]}``
* ``openai``: a list (or ``{"tools": [...]}``) of ``{"type": "function", "function": {"name",
  "description", "parameters"}}``; legacy ``functions`` lists too.
* ``mcp``: ``{"tools": [{"name", "description", "inputSchema", "outputSchema"?}]}`` (a ``tools/list`` result).
* ``openapi``: an OpenAPI 3 document: one tool per operation, local ``$ref`` resolved, path,
  query, header and JSON body parameters merged into one object; security never becomes a parameter.
* ``bfcl``: Berkeley Function-Calling Leaderboard function docs, JSON Lines (:mod:`synthrun.tools.bfcl`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthrun.tools.spec import (
    JSON_TYPES,
    SEMANTIC_RE,
    ParamSpec,
    ReturnSpec,
    SpecError,
    ToolSet,
    ToolSpec,
    TypeDef,
    TypeSystem,
    safe_name,
    type_from_schema,
    type_parts,
)

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def complexity_for(n_params: int) -> str:
    return "simple" if n_params <= 2 else "medium" if n_params <= 5 else "complex"


def _fmt_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def finish_toolset(name: str, fmt: str, tools: list[ToolSpec], origin: str, types: dict[str, TypeDef] | None = None) -> ToolSet:
    if not tools:
        raise SpecError(f"{origin}: the spec has no tools")
    taken: set[str] = set()
    name_map: dict[str, str] = {}
    for tool in tools:
        tool.name = safe_name(tool.original_name or tool.name, taken)
        taken.add(tool.name)
        tool.tool_id = tool.tool_id or tool.name
        name_map[tool.name] = tool.original_name
    return ToolSet(name=str(name or fmt), format=fmt, tools=tools, types=types or {}, name_map=name_map)


# ---------------------------------------------------------------------------- synthrun format


class _RawParam(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    required: bool = False
    default: Any = None
    description: str = ""
    enum: list[Any] | None = None
    items: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")


class _RawReturn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = "any"
    description: str = ""
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")


class _RawTool(BaseModel):
    model_config = ConfigDict(extra="allow")

    tool_id: str | None = None
    name: str = Field(min_length=1)
    category: str = "general"
    description: str = ""
    parameters: list[_RawParam] = Field(default_factory=list)
    returns: _RawReturn = Field(default_factory=_RawReturn)
    examples: list[Any] = Field(default_factory=list)
    complexity: str = "medium"
    executor: str | None = None


def _check_type(type_str: str, ts: TypeSystem, where: str) -> None:
    for part in type_parts(type_str):
        if part in JSON_TYPES or part == "any" or part in ts.types:
            continue
        if SEMANTIC_RE.match(part) and part.endswith("_handle"):
            continue
        raise SpecError(f"{where}: unknown type {part!r} (use a JSON type, 'any', a name ending in "
                        f"'_handle', or declare it under the spec's 'types')")


def _read_types(data: dict[str, Any], origin: str) -> TypeSystem:
    raw_types = data.get("types") or {}
    if not isinstance(raw_types, dict):
        raise SpecError(f"{origin}: 'types' must be an object of type name -> definition")
    types: dict[str, TypeDef] = {}
    for tname, tdef in raw_types.items():
        try:
            types[tname] = TypeDef.model_validate(tdef)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise SpecError(f"{origin}: types.{tname}.{_fmt_loc(err['loc'])}: {err['msg']}") from None
    ts = TypeSystem(types)
    for tname, tdef in types.items():
        for ref in [*tdef.is_a, *(type_parts(tdef.items) if tdef.items else []), *tdef.properties.values()]:
            _check_type(ref, ts, f"{origin}: types.{tname}")
    return ts


def _read_param(rp: _RawParam, ts: TypeSystem, pwhere: str) -> ParamSpec:
    _check_type(rp.type, ts, f"{pwhere}.type")
    if rp.items:
        _check_type(rp.items, ts, f"{pwhere}.items")
    if rp.enum is not None and not rp.enum:
        raise SpecError(f"{pwhere}.enum: must list at least one value")
    schema = dict(rp.schema_) if rp.schema_ else ts.schema_for(rp.type, rp.items)
    if rp.description:
        schema.setdefault("description", rp.description)
    if rp.enum:
        schema["enum"] = rp.enum
    if rp.default is not None:
        schema.setdefault("default", rp.default)
    return ParamSpec(name=rp.name, type=rp.type, required=rp.required, default=rp.default,
                     description=rp.description, enum=rp.enum, json_schema=schema,
                     **({"items": rp.items} if rp.items else {}))


def _read_tool(raw: Any, i: int, data: dict[str, Any], ts: TypeSystem, origin: str, seen: set[str]) -> ToolSpec:
    label = raw.get("name") if isinstance(raw, dict) else None
    where = f"{origin}: tool {label!r} (#{i})" if label else f"{origin}: tools[{i}]"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: each tool must be an object")
    try:
        rt = _RawTool.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SpecError(f"{where}: {_fmt_loc(err['loc'])}: {err['msg']}") from None
    if rt.name in seen:
        raise SpecError(f"{where}: name: duplicate tool name {rt.name!r}")
    seen.add(rt.name)
    if rt.complexity not in ("simple", "medium", "complex"):
        raise SpecError(f"{where}: complexity: {rt.complexity!r} is not one of simple, medium, complex")
    params: list[ParamSpec] = []
    pnames: set[str] = set()
    for j, rp in enumerate(rt.parameters):
        pwhere = f"{where}: parameters[{j}] ({rp.name!r})"
        if rp.name in pnames:
            raise SpecError(f"{pwhere}: duplicate parameter name")
        pnames.add(rp.name)
        params.append(_read_param(rp, ts, pwhere))
    _check_type(rt.returns.type, ts, f"{where}: returns.type")
    mentioned = [p.type for p in params] + [p.items for p in rt.parameters if p.items] + [rt.returns.type]
    extra = {k: v for k, v in (rt.model_extra or {}).items()}
    return ToolSpec(
        name=rt.name, original_name=rt.name, tool_id=rt.tool_id or "", category=rt.category,
        description=rt.description, parameters=params,
        returns=ReturnSpec(type=rt.returns.type, description=rt.returns.description,
                           json_schema=rt.returns.schema_ or ts.schema_for(rt.returns.type)),
        examples=rt.examples, complexity=rt.complexity,  # type: ignore[arg-type]
        executor=rt.executor or data.get("executor"), source_format="synthrun",
        types=ts.closure(mentioned), **extra,
    )


def read_synthrun(data: Any, origin: str) -> ToolSet:
    """Read the project's own JSON format."""
    if not isinstance(data, dict) or not isinstance(data.get("tools"), list):
        raise SpecError(f"{origin}: a synthrun spec is an object with a 'tools' list")
    ts = _read_types(data, origin)
    seen: set[str] = set()
    tools = [_read_tool(raw, i, data, ts, origin, seen) for i, raw in enumerate(data["tools"])]
    return finish_toolset(data.get("name") or "tools", "synthrun", tools, origin, ts.types)


# ---------------------------------------------------------------------------- JSON Schema based formats


def params_from_schema(schema: Any, where: str, location: str | None = None) -> list[ParamSpec]:
    """Parameters from an object JSON Schema (OpenAI ``parameters``, MCP ``inputSchema``)."""
    if schema is None:
        return []
    if not isinstance(schema, dict):
        raise SpecError(f"{where}: must be a JSON Schema object, got {type(schema).__name__}")
    if schema.get("type", "object") != "object":
        raise SpecError(f"{where}.type: must be 'object' (got {schema.get('type')!r})")
    props = schema.get("properties") or {}
    if not isinstance(props, dict):
        raise SpecError(f"{where}.properties: must be an object of name -> schema")
    required = schema.get("required") or []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise SpecError(f"{where}.required: must be a list of property names")
    unknown = [r for r in required if r not in props]
    if unknown:
        raise SpecError(f"{where}.required: {unknown} not among the properties {list(props)}")
    params = []
    for pname, pschema in props.items():
        if not isinstance(pschema, dict):
            raise SpecError(f"{where}.properties.{pname}: must be a JSON Schema object")
        ptype = type_from_schema(pschema)
        enum = pschema.get("enum") if isinstance(pschema.get("enum"), list) else None
        params.append(ParamSpec(name=pname, type=ptype, required=pname in required, default=pschema.get("default"),
                                description=str(pschema.get("description") or ""), enum=enum,
                                json_schema=pschema, location=location))
    return params


def returns_from_schema(schema: Any, description: str = "") -> ReturnSpec:
    if not isinstance(schema, dict):
        return ReturnSpec(type="any", description=description)
    return ReturnSpec(type=type_from_schema(schema), description=description or str(schema.get("description") or ""),
                      json_schema=schema)


def read_openai(data: Any, origin: str) -> ToolSet:
    """Read an OpenAI ``tools`` list (or legacy ``functions``)."""
    items = data if isinstance(data, list) else (data.get("tools") or data.get("functions")) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise SpecError(f"{origin}: an OpenAI spec is a list of tools or an object with a 'tools' list")
    tools = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SpecError(f"{origin}: tools[{i}]: must be an object")
        fn = item.get("function") if "function" in item else item
        if item.get("type", "function") != "function":
            raise SpecError(f"{origin}: tools[{i}].type: only 'function' tools are supported (got {item.get('type')!r})")
        if not isinstance(fn, dict):
            raise SpecError(f"{origin}: tools[{i}].function: must be an object")
        name = fn.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"{origin}: tools[{i}].function.name: missing or empty")
        where = f"{origin}: tool {name!r} (#{i})"
        params = params_from_schema(fn.get("parameters"), f"{where}: function.parameters")
        tools.append(ToolSpec(
            name=name, original_name=name, category=str(fn.get("category") or "general"),
            description=str(fn.get("description") or ""), parameters=params, complexity=complexity_for(len(params)),
            returns=returns_from_schema(fn.get("returns")), source_format="openai",
        ))
    name = data.get("name") if isinstance(data, dict) else None
    return finish_toolset(name or "openai_tools", "openai", tools, origin)


def read_mcp(data: Any, origin: str) -> ToolSet:
    """Read an MCP ``tools/list`` result (``name``, ``description``, ``inputSchema``)."""
    items = data.get("tools") if isinstance(data, dict) else data
    if isinstance(data, dict) and "result" in data and items is None:
        items = (data["result"] or {}).get("tools")
    if not isinstance(items, list):
        raise SpecError(f"{origin}: an MCP spec is an object with a 'tools' list")
    tools = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise SpecError(f"{origin}: tools[{i}]: must be an object")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"{origin}: tools[{i}].name: missing or empty")
        where = f"{origin}: tool {name!r} (#{i})"
        schema = item.get("inputSchema", item.get("input_schema"))
        if schema is None:
            raise SpecError(f"{where}: inputSchema: missing (MCP tools declare their arguments there)")
        params = params_from_schema(schema, f"{where}: inputSchema")
        annotations = item.get("annotations") or {}
        tools.append(ToolSpec(
            name=name, original_name=name, category=str(item.get("category") or "general"),
            description=str(item.get("description") or annotations.get("title") or ""), parameters=params,
            complexity=complexity_for(len(params)), returns=returns_from_schema(item.get("outputSchema")),
            source_format="mcp",
        ))
    name = data.get("name") if isinstance(data, dict) else None
    return finish_toolset(name or "mcp_tools", "mcp", tools, origin)


# ---------------------------------------------------------------------------- OpenAPI 3


class _RefError(Exception):
    pass


def _pointer(doc: Any, ref: str) -> Any:
    node = doc
    for raw in ref[2:].split("/") if ref != "#" else []:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise _RefError(f"$ref {ref!r} not found")
    return node


def resolve_refs(doc: Any, node: Any, seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by its target (a recursive ref is cut off)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise _RefError(f"$ref {ref!r}: only local references ('#/...') are supported")
            if ref in seen:
                return {"description": f"(recursive {ref.rsplit('/', 1)[-1]})"}
            target = resolve_refs(doc, _pointer(doc, ref), (*seen, ref))
            siblings = {k: resolve_refs(doc, v, seen) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings} if isinstance(target, dict) else target
        out = {k: resolve_refs(doc, v, seen) for k, v in node.items()}
        if isinstance(out.get("allOf"), list) and all(isinstance(s, dict) for s in out["allOf"]):
            merged: dict[str, Any] = {k: v for k, v in out.items() if k != "allOf"}
            for sub in out["allOf"]:
                for k, v in sub.items():
                    if k == "properties":
                        merged.setdefault("properties", {}).update(v)
                    elif k == "required":
                        merged["required"] = list(dict.fromkeys([*merged.get("required", []), *v]))
                    else:
                        merged.setdefault(k, v)
            return merged
        return out
    if isinstance(node, list):
        return [resolve_refs(doc, v, seen) for v in node]
    return node


def _json_content(content: Any) -> dict[str, Any] | None:
    if not isinstance(content, dict) or not content:
        return None
    for mime in content:
        if "json" in mime:
            return content[mime]
    return content.get("application/x-www-form-urlencoded") or content.get("multipart/form-data") or next(iter(content.values()))


def _security_params(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(location, lower-case name) of every credential a security scheme carries."""
    out = {("header", "authorization"), ("header", "proxy-authorization")}
    schemes = ((doc.get("components") or {}).get("securitySchemes") or {})
    for scheme in schemes.values() if isinstance(schemes, dict) else []:
        if isinstance(scheme, dict) and scheme.get("type") == "apiKey" and scheme.get("name"):
            out.add((str(scheme.get("in", "header")), str(scheme["name"]).lower()))
    return out


def read_openapi(data: Any, origin: str) -> ToolSet:
    """Read an OpenAPI 3 document (JSON or YAML already parsed)."""
    if not isinstance(data, dict) or "openapi" not in data:
        if isinstance(data, dict) and "swagger" in data:
            raise SpecError(f"{origin}: Swagger 2.0 is not supported; convert it to OpenAPI 3")
        raise SpecError(f"{origin}: an OpenAPI document needs an 'openapi' version field")
    if not str(data["openapi"]).startswith("3"):
        raise SpecError(f"{origin}: openapi: version {data['openapi']!r} is not 3.x")
    paths = data.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise SpecError(f"{origin}: paths: missing or empty (no operations to turn into tools)")
    secret = _security_params(data)
    servers = data.get("servers") or []
    server = servers[0].get("url") if servers and isinstance(servers[0], dict) else None
    tools: list[ToolSpec] = []
    for path, item in paths.items():
        if not isinstance(item, dict):
            raise SpecError(f"{origin}: paths.{path}: must be an object of operations")
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            label = (op.get("operationId") if isinstance(op, dict) else None) or f"{method}_{path}"
            where = f"{origin}: operation {method.upper()} {path} ({label!r})"
            if not isinstance(op, dict):
                raise SpecError(f"{where}: must be an object")
            try:
                tools.append(_openapi_operation(data, path, method, item, op, label, where, secret, server))
            except _RefError as exc:
                raise SpecError(f"{where}: {exc}") from None
    info = data.get("info") or {}
    return finish_toolset(info.get("title") or "openapi", "openapi", tools, origin)


def _openapi_params(doc: Any, item: dict[str, Any], op: dict[str, Any], where: str,
                    secret: set[tuple[str, str]]) -> list[ParamSpec]:
    """Path-item and operation parameters merged (the operation wins), credentials and cookies left out."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for source, plist in (("path item", item.get("parameters") or []), ("operation", op.get("parameters") or [])):
        if not isinstance(plist, list):
            raise SpecError(f"{where}: {source} parameters: must be a list")
        for j, raw in enumerate(plist):
            try:
                p = resolve_refs(doc, raw)
            except _RefError as exc:
                raise SpecError(f"{where}: parameters[{j}]: {exc}") from None
            if not isinstance(p, dict) or not p.get("name") or p.get("in") not in ("path", "query", "header", "cookie"):
                raise SpecError(f"{where}: parameters[{j}]: needs 'name' and 'in' (path, query, header or cookie)")
            merged[(p["in"], p["name"])] = p
    params: list[ParamSpec] = []
    for (loc, name), p in merged.items():
        if loc == "cookie" or (loc, name.lower()) in secret:
            continue  # credentials and cookies are the client's business, not the model's
        schema = p.get("schema")
        if schema is None:
            media = _json_content(p.get("content"))
            schema = (media or {}).get("schema") or {}
        schema = dict(schema)
        if p.get("description"):
            schema.setdefault("description", p["description"])
        params.append(ParamSpec(
            name=name, type=type_from_schema(schema), required=bool(p.get("required")) or loc == "path",
            default=schema.get("default"), description=str(p.get("description") or schema.get("description") or ""),
            enum=schema.get("enum") if isinstance(schema.get("enum"), list) else None, json_schema=schema, location=loc,
        ))
    return params


def _openapi_body(doc: Any, op: dict[str, Any], where: str, params: list[ParamSpec]) -> None:
    """Append the JSON request body's fields (or one ``body`` parameter) to ``params``."""
    body = op.get("requestBody")
    if body is None:
        return
    try:
        body = resolve_refs(doc, body)
    except _RefError as exc:
        raise SpecError(f"{where}: requestBody: {exc}") from None
    media = _json_content(body.get("content")) if isinstance(body, dict) else None
    bschema = (media or {}).get("schema") if isinstance(media, dict) else None
    if isinstance(bschema, dict) and (bschema.get("type") == "object" or "properties" in bschema):
        taken = {p.name for p in params}
        for bp in params_from_schema({**bschema, "type": "object"}, f"{where}: requestBody.schema", "body"):
            if bp.name in taken:
                bp.name = f"body_{bp.name}"
            params.append(bp)
    elif isinstance(bschema, dict):
        params.append(ParamSpec(name="body", type=type_from_schema(bschema), required=bool(body.get("required")),
                                description=str(body.get("description") or "request body"),
                                json_schema=bschema, location="body"))


def _openapi_returns(doc: Any, op: dict[str, Any], where: str) -> ReturnSpec:
    """The return value of the first success (or default) response with a JSON body."""
    responses = op.get("responses") or {}
    if not isinstance(responses, dict):
        return ReturnSpec()
    for code in ("200", "201", "202", "2XX", "2xx", "default"):
        if code in responses or int_key(responses, code):
            resp = responses.get(code, responses.get(int_key(responses, code)))
            try:
                resp = resolve_refs(doc, resp)
            except _RefError as exc:
                raise SpecError(f"{where}: responses.{code}: {exc}") from None
            media = _json_content(resp.get("content")) if isinstance(resp, dict) else None
            rschema = (media or {}).get("schema") if isinstance(media, dict) else None
            return returns_from_schema(rschema, str((resp or {}).get("description") or ""))
    return ReturnSpec()


def _openapi_operation(doc: Any, path: str, method: str, item: dict[str, Any], op: dict[str, Any], label: str,
                       where: str, secret: set[tuple[str, str]], server: str | None) -> ToolSpec:
    params = _openapi_params(doc, item, op, where, secret)
    _openapi_body(doc, op, where, params)
    returns = _openapi_returns(doc, op, where)
    tags = op.get("tags") or []
    description = " ".join(s for s in (op.get("summary"), op.get("description")) if isinstance(s, str) and s).strip()
    return ToolSpec(
        name=label, original_name=label, category=str(tags[0]) if tags else "api", description=description,
        parameters=params, returns=returns, complexity=complexity_for(len(params)),  # type: ignore[arg-type]
        source_format="openapi", http={"method": method.upper(), "path": path, "server": server},
    )


def int_key(mapping: dict[Any, Any], code: str) -> int | None:
    """YAML reads ``200:`` as an int key; return that key when present."""
    return int(code) if code.isdigit() and int(code) in mapping else None
