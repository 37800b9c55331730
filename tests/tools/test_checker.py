"""The format/AST check: missing required, unknown argument, wrong type, bad enum, references."""

from __future__ import annotations

import pytest

from synthrun.tools.checker import check_call, check_path
from synthrun.tools.loading import load_spec


@pytest.fixture(scope="module")
def hdf5():
    return load_spec("recipes/data/hdf5_tools.json")


def codes(issues):
    return [(i.code, i.arg) for i in issues]


def test_a_well_formed_call_has_no_issues(hdf5):
    assert check_call(hdf5.get("open_file"), {"file_path": "climate.h5", "mode": "r"}) == []


def test_missing_required(hdf5):
    issues = check_call(hdf5.get("open_file"), {"mode": "r"})
    assert codes(issues) == [("missing_required", "file_path")]
    assert "file_path" in issues[0].message


def test_unknown_argument(hdf5):
    issues = check_call(hdf5.get("open_file"), {"file_path": "climate.h5", "path": "/x"})
    assert codes(issues) == [("unknown_argument", "path")]


def test_wrong_type(hdf5):
    issues = check_call(hdf5.get("hdf5_stream_data"),
                        {"file_path": "climate.h5", "dataset_path": "/measurements/pressure", "block_rows": "four"})
    assert codes(issues) == [("wrong_type", "block_rows")]
    assert check_call(hdf5.get("hdf5_stream_data"), {"file_path": 3, "dataset_path": "/a"})[0].code == "wrong_type"


def test_bad_enum(hdf5):
    assert codes(check_call(hdf5.get("open_file"), {"file_path": "climate.h5", "mode": "w"})) == [("bad_enum", "mode")]
    # enums inside arrays are checked too
    issues = check_call(hdf5.get("hdf5_aggregate_stats"),
                        {"file_path": "climate.h5", "dataset_path": "/a", "stats": ["mean", "median"]})
    assert codes(issues) == [("bad_enum", "stats")]


def test_unknown_tool_and_non_object_args(hdf5):
    assert codes(check_call(None, {}, name="rm_rf")) == [("unknown_tool", None)]
    assert codes(check_call(hdf5.get("open_file"), ["climate.h5"])) == [("args_not_object", None)]


def test_references_in_a_path(hdf5):
    good = [{"tool": "open_file", "args": {"file_path": "climate.h5"}},
            {"tool": "get_by_path", "args": {"parent": "$step1", "path": "/measurements/temperature"}},
            {"tool": "read_full_dataset", "args": {"dataset": "$step2"}}]
    assert check_path(good, hdf5.tools) == []
    # a file handle is not a dataset handle
    bad_type = [good[0], {"tool": "read_full_dataset", "args": {"dataset": "$step1"}}]
    assert codes(check_path(bad_type, hdf5.tools)) == [("wrong_type", "dataset")]
    # forward reference
    forward = [{"tool": "get_by_path", "args": {"parent": "$step2", "path": "/a"}}, good[0]]
    assert codes(check_path(forward, hdf5.tools)) == [("bad_reference", "parent")]
    # a handle cannot be typed in by the model
    literal = [{"tool": "read_full_dataset", "args": {"dataset": "climate.h5"}}]
    assert codes(check_path(literal, hdf5.tools)) == [("wrong_type", "dataset")]
    assert check_path(literal, hdf5.tools, strict_handles=False) == []
    # element of a list result feeds a path parameter
    listed = [good[0], {"tool": "visit", "args": {"group": "$step1"}},
              {"tool": "get_by_path", "args": {"parent": "$step1", "path": "$step2[0]"}}]
    assert check_path(listed, hdf5.tools) == []
    # unknown tool in the middle
    assert codes(check_path([{"tool": "nope", "args": {}}], hdf5.tools)) == [("unknown_tool", None)]


def test_openapi_tool_schema_is_checked():
    ts = load_spec(__import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "specs" / "petstore_openapi.yaml")
    create = ts.get("createPet")
    assert check_call(create, {"name": "Rex", "species": "dog"}) == []
    assert codes(check_call(create, {"name": "Rex", "species": "fish"})) == [("bad_enum", "species")]
    assert codes(check_call(ts.get("getPet"), {"petId": "seven"})) == [("wrong_type", "petId")]


def test_resolved_references_are_checked_against_the_schema():
    from tests.tools.test_recipes_tools import UNTYPED

    tools = load_spec(UNTYPED).tools
    path = [{"tool": "count_numbers", "args": {"category": "primes"}, "resolved_args": {"category": "primes"}},
            {"tool": "square_root", "args": {"number": "$step1"}}]
    assert check_path(path, tools) == []  # an untyped result: unknown until it has run
    ran = [path[0], {**path[1], "resolved_args": {"number": {"status": "ok"}}}]
    issues = check_path(ran, tools)
    assert codes(issues) == [("wrong_type", "number")]
    assert 'resolved to {"status": "ok"}' in issues[0].message and issues[0].step == 2
    fits = [path[0], {**path[1], "resolved_args": {"number": 16}}]
    assert check_path(fits, tools) == []
    listed = [path[0], {"tool": "sum_numbers", "args": {"numbers": ["$step1", 2]},
                        "resolved_args": {"numbers": [{"status": "ok"}, 2]}}]
    assert codes(check_path(listed, tools)) == [("wrong_type", "numbers")]
