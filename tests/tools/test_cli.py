"""``synthrun tools parse|graph`` (synthrun.tools.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

from synthrun.tools.cli import main

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"


def test_parse_prints_a_summary(capsys):
    assert main(["parse", str(SPECS / "petstore_openapi.yaml")]) == 0
    out = capsys.readouterr().out
    assert "Petstore (openapi): 4 tools" in out
    assert "createPet(name: string, species: string, tag?: string) -> object" in out
    assert "renamed: 'delete_/pets/{petId}' -> delete_pets_petId" in out


def test_parse_reports_a_malformed_spec(capsys):
    assert main(["parse", str(SPECS / "bad_openai.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "tools[1].function.name: missing or empty" in err


def test_graph_validate_chains_dependents_and_json(tmp_path, capsys):
    out_file = tmp_path / "g" / "graph.json"
    code = main(["graph", "recipes/data/hdf5_tools.json", "--validate", "open_file->get_by_path->read_full_dataset",
                 "--chains", "3", "--limit", "10", "--dependents", "open_file", "--json", str(out_file)])
    out = capsys.readouterr().out
    assert code == 0
    assert "open_file -> get_by_path -> read_full_dataset: VALID" in out
    assert "step 3: dataset=$step2" in out
    assert "direct dependents of open_file:" in out and "  get_by_path (parent; confidence 1.00)" in out
    assert out.count(" -> ") >= 10
    data = json.loads(out_file.read_text())
    assert len(data["nodes"]) == 25 and "3" in data["chains"]
    assert main(["graph", "recipes/data/hdf5_tools.json", "--validate", "open_file->get_by_path->open_file"]) == 1
    assert "INVALID" in capsys.readouterr().out
    assert main(["graph", "recipes/data/hdf5_tools.json", "--dependents", "nope"]) == 2


def test_bad_arguments():
    assert main(["frobnicate"]) == 2
    assert main([]) == 2


def test_chain_length_and_limit_must_be_positive(capsys):
    for flag, value in (("--chains", "-2"), ("--chains", "0"), ("--limit", "0"), ("--chains", "two")):
        assert main(["graph", "recipes/data/hdf5_tools.json", flag, value]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("synthrun tools graph: error: argument " + flag), err
    assert main(["graph", "recipes/data/hdf5_tools.json", "--chains", "2", "--limit", "3"]) == 0
    assert "valid chains of 2 tools (3+)" in capsys.readouterr().out
