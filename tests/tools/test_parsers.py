"""synthrun.tools.parsers: each reader on small in-memory specs (the file fixtures are in test_spec.py)."""

from __future__ import annotations

import pytest

from synthrun.tools.parsers import (
    params_from_schema,
    read_mcp,
    read_openai,
    read_openapi,
    read_synthrun,
    resolve_refs,
    returns_from_schema,
)
from synthrun.tools.spec import SpecError


def _synthrun(**tool):
    return {"name": "t", "types": {"file_handle": {"handle": True, "description": "an open file"}},
            "tools": [{"name": "open", "parameters": [{"name": "path", "type": "string", "required": True}],
                       "returns": {"type": "file_handle"}}, tool]}


def test_read_synthrun_builds_schemas_and_closes_over_used_types():
    spec = read_synthrun(_synthrun(name="size", description="Size of a file.", complexity="simple",
                                   parameters=[{"name": "file", "type": "file_handle", "required": True},
                                               {"name": "unit", "type": "string", "enum": ["B", "kB"],
                                                "default": "B", "description": "unit"}]), "<mem>")
    size = spec.get("size")
    unit = size.param("unit")
    assert unit.json_schema == {"type": "string", "description": "unit", "enum": ["B", "kB"], "default": "B"}
    assert size.param("file").required and set(size.types) == {"file_handle"}
    assert spec.get("open").returns.type == "file_handle" and spec.format == "synthrun"


@pytest.mark.parametrize("tool, fragment", [
    ({"name": "x", "parameters": [{"name": "a", "type": "string"}, {"name": "a", "type": "string"}]},
     "tool 'x' (#1): parameters[1] ('a'): duplicate parameter name"),
    ({"name": "x", "parameters": [{"name": "a", "type": "colour"}]}, "parameters[0] ('a').type: unknown type 'colour'"),
    ({"name": "x", "parameters": [{"name": "a", "type": "string", "enum": []}]}, "enum: must list at least one value"),
    ({"name": "x", "complexity": "huge"}, "complexity: 'huge' is not one of"),
    ({"name": "open"}, "duplicate tool name 'open'"),
    ({"name": "x", "returns": {"type": "mystery"}}, "returns.type: unknown type 'mystery'"),
    ({"name": ""}, "tools[1]: name:"),
])
def test_read_synthrun_errors_name_the_tool_and_field(tool, fragment):
    with pytest.raises(SpecError) as err:
        read_synthrun(_synthrun(**tool), "<mem>")
    assert fragment in str(err.value) and str(err.value).startswith("<mem>: ")


def test_read_synthrun_rejects_bad_type_declarations():
    with pytest.raises(SpecError, match=r"types.blob: unknown type 'nothing'"):
        read_synthrun({"types": {"blob": {"is_a": ["nothing"]}}, "tools": [{"name": "a"}]}, "<mem>")
    with pytest.raises(SpecError, match=r"types.blob.base"):
        read_synthrun({"types": {"blob": {"base": "tuple"}}, "tools": [{"name": "a"}]}, "<mem>")


def test_read_openai_and_mcp_make_params_from_json_schema():
    schema = {"type": "object", "required": ["city"],
              "properties": {"city": {"type": "string"}, "days": {"type": "integer", "default": 3}}}
    oa = read_openai([{"type": "function", "function": {"name": "weather.get", "parameters": schema}}], "<oa>")
    tool = oa.tools[0]
    assert tool.name == "weather_get" and oa.name_map == {"weather_get": "weather.get"}
    assert [(p.name, p.type, p.required, p.default) for p in tool.parameters] == [
        ("city", "string", True, None), ("days", "integer", False, 3)]
    mcp = read_mcp({"tools": [{"name": "weather", "inputSchema": schema, "outputSchema": {"type": "array"}}]}, "<mcp>")
    assert mcp.tools[0].returns.type == "array" and mcp.format == "mcp"
    with pytest.raises(SpecError, match="only 'function' tools"):
        read_openai([{"type": "retrieval"}], "<oa>")


def test_params_and_returns_from_schema():
    params = params_from_schema({"type": "object", "properties": {"n": {"type": "integer", "enum": [1, 2]}}}, "w")
    assert params[0].enum == [1, 2] and not params[0].required
    assert returns_from_schema(None).type == "any"
    assert returns_from_schema({"type": "string", "description": "x"}).description == "x"


OPENAPI = {
    "openapi": "3.0.3", "info": {"title": "Shop"}, "servers": [{"url": "https://shop.example/api"}],
    "components": {
        "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        "schemas": {"Item": {"type": "object", "required": ["name"],
                             "properties": {"name": {"type": "string"}, "id": {"type": "integer"}}}},
        "parameters": {"Limit": {"name": "limit", "in": "query", "schema": {"type": "integer"}}},
    },
    "paths": {"/items/{id}": {
        "parameters": [{"name": "id", "in": "path", "schema": {"type": "integer"}}],
        "put": {"operationId": "putItem", "tags": ["items"], "summary": "Replace an item.",
                "parameters": [{"$ref": "#/components/parameters/Limit"},
                               {"name": "X-Api-Key", "in": "header", "schema": {"type": "string"}},
                               {"name": "session", "in": "cookie", "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}},
                "responses": {200: {"description": "the item",
                                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}}},
    }},
}


def test_read_openapi_merges_path_query_and_body_and_leaves_credentials_out():
    spec = read_openapi(OPENAPI, "<api>")
    tool = spec.get("putItem")
    assert [(p.name, p.location, p.required) for p in tool.parameters] == [
        ("id", "path", True), ("limit", "query", False), ("name", "body", True), ("body_id", "body", False)]
    assert tool.http == {"method": "PUT", "path": "/items/{id}", "server": "https://shop.example/api"}
    assert tool.returns.type == "object" and tool.returns.description == "the item", "YAML-style int status key"
    assert tool.category == "items" and tool.description == "Replace an item." and spec.name == "Shop"


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d.update(openapi="2.0"), "version '2.0' is not 3.x"),
    (lambda d: d.update(paths={}), "paths: missing or empty"),
    (lambda d: d["paths"]["/items/{id}"]["put"]["parameters"].append({"$ref": "other.yaml#/x"}),
     "only local references"),
    (lambda d: d["paths"]["/items/{id}"]["put"]["parameters"].append({"name": "q"}), "needs 'name' and 'in'"),
    (lambda d: d["paths"]["/items/{id}"]["put"].update(requestBody={"$ref": "#/components/nowhere"}),
     "requestBody:"),
])
def test_read_openapi_errors_name_the_operation(mutate, fragment):
    import copy

    doc = copy.deepcopy(OPENAPI)
    mutate(doc)
    with pytest.raises(SpecError) as err:
        read_openapi(doc, "<api>")
    assert fragment in str(err.value)


def test_resolve_refs_merges_all_of_and_cuts_recursion():
    doc = {"d": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/d/Node"}}},
                 "A": {"properties": {"a": {"type": "string"}}, "required": ["a"]}}}
    node = resolve_refs(doc, {"$ref": "#/d/Node"})
    assert node["type"] == "object" and node["properties"]["child"] == {"description": "(recursive Node)"}
    merged = resolve_refs(doc, {"allOf": [{"$ref": "#/d/A"}, {"properties": {"b": {"type": "integer"}},
                                                               "required": ["b"]}]})
    assert set(merged["properties"]) == {"a", "b"} and merged["required"] == ["a", "b"]
