"""tool_parse: a source stage that validates a spec, summarises it and emits one record per tool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthrun.stage import StageError
from synthrun.stages.tool_parse import ParseTools
from tests.tools.fake_llm import make_ctx

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"


def test_parse_hdf5_spec(tmp_path):
    ctx = make_ctx(tmp_path, {}, "parse")
    records = ParseTools(spec="recipes/data/hdf5_tools.json").run([], ctx)
    assert ParseTools.source and len(records) == 25
    assert records[0].tool.name == "open_file" and records[0].spec_name == "hdf5_tools"
    assert ctx.summary["tools"] == 25 and ctx.summary["categories"]["datasets"] == 7
    assert ctx.summary["graph"]["edges"] > 25
    graph = json.loads((ctx.stage_dir / "graph.json").read_text())
    assert ["open_file", "get_by_path", "read_full_dataset"] in graph["chains"]["3"]
    spec = json.loads((ctx.stage_dir / "spec.json").read_text())
    assert len(spec["tools"]) == 25


@pytest.mark.parametrize("name, fmt, n", [("openai_tools.json", "openai", 3), ("mcp_tools.json", "mcp", 3),
                                           ("petstore_openapi.yaml", "openapi", 4), ("mini_synthrun.json", "synthrun", 3)])
def test_parse_each_format(tmp_path, name, fmt, n):
    ctx = make_ctx(tmp_path, {}, "parse")
    records = ParseTools(spec=str(SPECS / name)).run([], ctx)
    assert len(records) == n and ctx.summary["format"] == fmt
    assert all(r.spec_format == fmt for r in records)


def test_include_exclude_and_errors(tmp_path):
    ctx = make_ctx(tmp_path, {}, "parse")
    recs = ParseTools(spec="recipes/data/hdf5_tools.json", include=["open_file", "get_by_path"], write_graph=False).run([], ctx)
    assert [r.tool.name for r in recs] == ["open_file", "get_by_path"]
    with pytest.raises(StageError, match="not in the spec"):
        ParseTools(spec="recipes/data/hdf5_tools.json", exclude=["nope"]).run([], ctx)
    with pytest.raises(StageError, match=r"tool 'get_user' \(#1\)"):
        ParseTools(spec=str(SPECS / "bad_synthrun.json")).run([], ctx)
