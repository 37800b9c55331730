"""Dependency graph on the HDF5 tools: edges, chain validation, chain listing and sampling, JSON export."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from synthrun.tools.graph import ToolGraph
from synthrun.tools.loading import load_spec


@pytest.fixture(scope="module")
def graph():
    return ToolGraph(load_spec("recipes/data/hdf5_tools.json").tools)


def test_open_get_read_chain_is_valid(graph):
    check = graph.validate_chain("open_file -> get_by_path -> read_full_dataset")
    assert check.valid and check.problems == []
    assert [[b.ref for b in step] for step in check.bindings] == [[], ["$step1"], ["$step2"]]
    assert [b.param for b in check.bindings[2]] == ["dataset"]
    assert 0.5 <= check.confidence <= 1.0


def test_feeding_a_dataset_into_open_file_is_invalid(graph):
    check = graph.validate_chain(["open_file", "get_by_path", "open_file"])
    assert not check.valid
    assert any("no edge get_by_path -> open_file" in p for p in check.problems)
    check = graph.validate_chain("open_file->get_by_path->read_full_dataset->open_file")
    assert not check.valid and "no edge read_full_dataset -> open_file" in check.problems[0]
    assert graph.edge("read_full_dataset", "open_file") is None


def test_a_handle_needs_a_producer_before_it(graph):
    check = graph.validate_chain("get_by_path->read_full_dataset")
    assert not check.valid
    assert "get_by_path needs parent (group_handle)" in check.problems[0]
    assert not graph.validate_chain("open_file->read_full_dataset").valid  # a file is not a dataset
    assert not graph.validate_chain("open_file->nope").valid


def test_edges_by_type_and_subtype(graph):
    # a file handle is a group handle (is_a), so open_file feeds get_by_path and list_keys
    assert graph.edge("open_file", "get_by_path")["confidence"] == 1.0
    assert graph.edge("open_file", "list_keys")["links"][0]["param"] == "group"
    # a union result fits partly: dataset_handle|group_handle -> dataset_handle
    assert graph.edge("get_by_path", "read_full_dataset")["confidence"] == 0.8
    # an element of a path list feeds a path parameter
    link = graph.edge("visit", "get_by_path")["links"][0]
    assert (link["param"], link["accessor"]) == ("path", "[0]")
    assert graph.validate_chain("open_file->visit->get_by_path->get_shape").valid
    # a whole path list feeds a list parameter
    assert graph.edge("visit", "hdf5_batch_read")["confidence"] == 1.0


def test_dependents(graph):
    deps = graph.dependents("open_file")
    direct = {d["tool"] for d in deps["direct"]}
    assert {"get_by_path", "list_keys", "visit", "close_file", "read_attribute"} <= direct
    assert "read_full_dataset" not in direct and "read_full_dataset" in deps["downstream"]
    assert {"get_by_path", "open_file"} <= set(graph.dependents("read_full_dataset")["upstream"])
    assert graph.dependents("read_full_dataset")["direct"] == []
    with pytest.raises(KeyError):
        graph.dependents("nope")


def test_chains_of_length_k_are_all_valid(graph):
    for k in (1, 2, 3):
        chains = graph.chains(k)
        assert chains and all(len(c) == k and len(set(c)) == k for c in chains)
        assert all(graph.validate_chain(c).valid for c in chains)
    assert ["open_file", "get_by_path", "read_full_dataset"] in graph.chains(3)
    assert len(graph.chains(3, limit=5)) == 5


def test_sampling_and_prerequisites(graph):
    rng = random.Random(3)
    for _ in range(10):
        check = graph.sample_chain(rng, 2, 4)
        assert check is not None and check.valid and 2 <= len(check.chain) <= 4
    assert graph.prerequisites("read_full_dataset") == ["open_file", "get_by_path", "read_full_dataset"]
    assert graph.prerequisites("identify_io_bottlenecks") == ["identify_io_bottlenecks"]
    assert graph.is_standalone("open_file") and not graph.is_standalone("get_shape")


def test_json_export(graph, tmp_path):
    data = graph.to_json((2, 3), chain_limit=50)
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(data))
    back = json.loads(path.read_text())
    assert len(back["nodes"]) == 25
    assert {"source": "open_file", "target": "get_by_path"}.items() <= next(
        e for e in back["edges"] if e["source"] == "open_file" and e["target"] == "get_by_path").items()
    assert all(len(c) == 3 for c in back["chains"]["3"])


def test_graph_on_a_small_project_spec():
    spec = load_spec(Path(__file__).resolve().parents[1] / "data" / "specs" / "mini_synthrun.json")
    g = ToolGraph(spec.tools)
    assert g.validate_chain("login->find_user->get_user").valid
    bindings = g.validate_chain("login->find_user->get_user").bindings[2]
    assert {b.param: b.ref for b in bindings} == {"user_id": "$step2", "session": "$step1"}
    assert not g.validate_chain("find_user->get_user").valid


def test_untyped_results_make_edges_but_are_never_bound_to_typed_parameters():
    from tests.tools.test_recipes_tools import UNTYPED

    g = ToolGraph(load_spec(UNTYPED).tools)
    link = g.edge("count_numbers", "square_root")["links"][0]
    assert (link["param"], link["bind"]) == ("number", False)
    check = g.validate_chain("count_numbers -> square_root")
    assert check.valid and check.bindings == [[], []]  # the model writes `number` itself
    assert g.bindable("any", "any") and g.bindable("number", "integer") and not g.bindable("number", "any")
    # a typed field of a result is bound when its type fits the parameter
    from tests.tools.test_bfcl import FUNCTIONS

    typed = ToolGraph(load_spec(FUNCTIONS).tools)
    step = typed.validate_chain("get_symbol_by_name -> get_stock_info").bindings[1]
    assert [(b.param, b.ref) for b in step] == [("symbol", "$step1.symbol")]
    assert typed.edge("get_stock_info", "place_order")["links"][0]["accessor"] == ".price"
