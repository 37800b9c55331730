"""Spec parsing: the four formats, $ref resolution, safe names, and clear errors for malformed specs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from synthrun.tools.loading import detect_format, load_spec
from synthrun.tools.spec import NAME_RE, SpecError, safe_name

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"


def test_project_format_hdf5_spec_has_25_tools_in_6_categories():
    ts = load_spec("recipes/data/hdf5_tools.json")
    assert ts.format == "synthrun" and len(ts.tools) == 25
    assert set(ts.summary()["categories"]) == {"file_operations", "navigation", "datasets", "attributes",
                                               "performance", "discovery"}
    open_file = ts.get("open_file")
    assert open_file.returns.type == "file_handle" and open_file.executor == "hdf5"
    assert ts.get("get_by_path").param("parent").type == "group_handle"
    assert set(ts.get("get_by_path").returns.type.split("|")) == {"dataset_handle", "group_handle"}
    assert ts.get("read_full_dataset").param("dataset").type == "dataset_handle"
    # handles travel as strings on the wire; the semantic type is kept for the graph
    assert ts.get("read_full_dataset").input_schema()["properties"]["dataset"]["type"] == "string"
    assert ts.get("open_file").input_schema()["properties"]["mode"]["enum"] == ["r", "r+"]
    assert ts.get("read_full_dataset").types["dataset_handle"].handle is True


def test_spec_path_resolves_inside_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no recipes/ folder here: found through synthrun.paths.recipes_dir()
    assert len(load_spec("recipes/data/hdf5_tools.json").tools) == 25
    assert len(load_spec("hdf5_tools.json").tools) == 25


def test_openai_tools_list():
    ts = load_spec(SPECS / "openai_tools.json")
    assert ts.format == "openai" and ts.name == "travel_assistant"
    assert ts.names == ["search_flights", "book_flight", "get_weather"]
    assert ts.name_map["book_flight"] == "book.flight"
    search = ts.get("search_flights")
    assert search.required == ["origin", "destination", "date"]
    assert search.param("cabin").enum == ["economy", "business", "first"]
    assert search.to_openai()["function"]["parameters"]["required"] == ["origin", "destination", "date"]
    # a bare list works too
    data = json.loads((SPECS / "openai_tools.json").read_text())["tools"]
    assert load_spec(data).names == ts.names


def test_mcp_tool_list():
    ts = load_spec(SPECS / "mcp_tools.json")
    assert ts.format == "mcp"
    assert ts.names == ["read_file", "list_directory", "search_files"]
    assert ts.name_map["search_files"] == "search files"
    read = ts.get("read_file")
    assert read.required == ["path"] and read.returns.type == "object"
    assert set(read.returns.json_schema["properties"]) == {"content", "size"}
    assert ts.get("list_directory").param("recursive").default is False


def test_openapi_yaml_with_refs():
    ts = load_spec(SPECS / "petstore_openapi.yaml")
    assert ts.format == "openapi" and ts.name == "Petstore"
    assert ts.names == ["listPets", "createPet", "getPet", "delete_pets_petId"]
    assert ts.name_map["delete_pets_petId"] == "delete_/pets/{petId}"
    list_pets = ts.get("listPets")
    # $ref'd query parameter resolved; the apiKey header is security, never a parameter
    assert [p.name for p in list_pets.parameters] == ["limit", "species"]
    assert list_pets.param("limit").default == 20 and list_pets.param("limit").location == "query"
    assert list_pets.returns.type == "array"
    # items $ref -> Pet (allOf merged with NewPet) with the recursive Owner.pets cut off
    pet = list_pets.returns.json_schema["items"]
    assert set(pet["properties"]) == {"name", "species", "tag", "id", "owner"} and "$ref" not in json.dumps(pet)
    assert set(pet["required"]) == {"name", "species", "id"}
    # requestBody $ref -> schema $ref: body properties merged into the one object schema
    create = ts.get("createPet")
    assert {p.name: (p.location, p.required) for p in create.parameters} == {
        "name": ("body", True), "species": ("body", True), "tag": ("body", False)}
    assert create.param("species").enum == ["dog", "cat", "bird"]
    # path-item level parameter shared by the operations below it; cookie dropped
    get_pet = ts.get("getPet")
    assert [(p.name, p.location, p.required, p.type) for p in get_pet.parameters] == [("petId", "path", True, "integer")]
    assert [p.name for p in ts.get("delete_pets_petId").parameters] == ["petId"]
    assert get_pet.http == {"method": "GET", "path": "/pets/{petId}", "server": "https://petstore.example.com/v1"}
    assert all(NAME_RE.match(n) for n in ts.names)


def test_openapi_json_document_is_read_too(tmp_path):
    import yaml

    data = yaml.safe_load((SPECS / "petstore_openapi.yaml").read_text())
    path = tmp_path / "petstore.json"
    path.write_text(json.dumps(data))
    assert load_spec(path).names == load_spec(SPECS / "petstore_openapi.yaml").names


def test_synthrun_mini_spec_with_declared_types():
    ts = load_spec(SPECS / "mini_synthrun.json")
    assert ts.names == ["login", "find_user", "get_user"]
    assert ts.name_map["find_user"] == "find user"
    assert ts.get("get_user").param("user_id").json_schema["type"] == "integer"
    assert ts.get("get_user").param("fields").json_schema == {
        "type": "array", "items": {"type": "string"}, "description": "Fields to return", "default": ["name"]}


@pytest.mark.parametrize("name, pattern", [
    ("bad_synthrun.json", r"tool 'get_user' \(#1\): parameters\[0\] \('user_id'\)\.type: unknown type 'strng'"),
    ("bad_openai.json", r"tools\[1\]\.function\.name: missing or empty"),
    ("bad_mcp.json", r"tool 'list_directory' \(#0\): inputSchema\.required: \['depth'\] not among the properties"),
    ("bad_openapi.yaml", r"operation GET /items/\{id\} \('getItem'\): parameters\[0\]: \$ref "
                         r"'#/components/parameters/ItemId' not found"),
])
def test_malformed_specs_name_the_tool_and_field(name, pattern):
    with pytest.raises(SpecError) as err:
        load_spec(SPECS / name)
    message = str(err.value)
    assert re.search(pattern, message), message
    assert name in message and "\n" not in message


@pytest.mark.parametrize("data, fragment", [
    ({"tools": [{"name": "x", "parameters": [{"name": "a", "type": "string", "requried": True}]}]}, "requried"),
    ({"tools": [{"name": "x", "complexity": "huge"}]}, "complexity"),
    ({"tools": [{"name": "x"}, {"name": "x"}]}, "duplicate tool name"),
    ({"tools": []}, "no tools"),
    ({"openapi": "3.0.0", "paths": {}}, "paths: missing or empty"),
    ({"tools": [{"name": "t", "inputSchema": {"type": "array"}}]}, "inputSchema.type: must be 'object'"),
])
def test_more_malformed_inputs(data, fragment):
    with pytest.raises(SpecError, match=re.escape(fragment)):
        load_spec(data)


def test_unreadable_files(tmp_path):
    bad = tmp_path / "spec.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(bad)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.json")


def test_detect_format_and_safe_names():
    assert detect_format({"openapi": "3.1.0"}) == "openapi"
    assert detect_format([{"type": "function", "function": {"name": "f"}}]) == "openai"
    assert detect_format({"tools": [{"name": "f", "inputSchema": {}}]}) == "mcp"
    assert detect_format({"tools": [{"tool_id": "a", "name": "f"}]}) == "synthrun"
    assert safe_name("get /users/{id}") == "get_users_id"
    assert safe_name("x" * 80) == "x" * 64
    assert safe_name("tool", {"tool"}) == "tool_2"
    assert NAME_RE.match(safe_name("ünïcødé name!"))
