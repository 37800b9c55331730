"""tool_execute: format check, then real h5py execution with results passed forward and stored."""

from __future__ import annotations

import json

from synthrun.stages.tool_execute import ExecuteTools
from synthrun.tools.loading import load_spec
from tests.tools.examples import GOOD, example
from tests.tools.fake_llm import make_ctx


def test_real_results_are_stored_in_the_steps(tmp_path):
    ctx = make_ctx(tmp_path, {}, "execute")
    [done] = ExecuteTools().run([example(GOOD)], ctx)
    steps = done.reasoning_path
    assert all(s.ok and s.executor == "hdf5" and not s.simulated for s in steps)
    assert steps[0].result["handle"] == "hdf5://climate.h5#/"
    assert steps[1].resolved_args == {"parent": "hdf5://climate.h5#/", "path": "/measurements/temperature"}
    assert steps[1].args["parent"] == "$step1", "the symbolic args are kept"
    assert steps[2].result == "degC"
    assert done.metadata["format_ok"] and done.metadata["execution_ok"]
    assert done.metadata["executed_steps"] == {"real": 3, "simulated": 0}
    assert (ctx.stage_dir / "work" / "hdf5_files" / "climate.h5").is_file()
    assert ctx.summary["format_ok_rate"] == 1.0 and ctx.summary["real_steps"] == 3


def test_malformed_and_failed_steps_stop_the_path(tmp_path):
    malformed = example([GOOD[0], ("get_by_path", {"parent": "$step1"}), GOOD[2]], ex_id="m")
    failing = example([GOOD[0], ("get_by_path", {"parent": "$step1", "path": "/nope"}), GOOD[2]], ex_id="f")
    ctx = make_ctx(tmp_path, {}, "execute")
    out = ExecuteTools().run([malformed, failing], ctx)
    m, f = out
    assert m.reasoning_path[0].ok is True
    assert m.reasoning_path[1].ok is False and m.reasoning_path[1].error.startswith("format: missing_required")
    assert m.reasoning_path[2].ok is False and m.reasoning_path[2].error.startswith("not run")
    assert not m.metadata["format_ok"]
    assert f.metadata["format_ok"] and not f.metadata["execution_ok"]
    assert "no group or dataset at '/nope'" in f.reasoning_path[1].error
    assert ctx.failures == {"format_check_failed": 1, "execution_failed": 1}
    dropped = ExecuteTools(drop_failed=True).run([malformed, failing, example(GOOD, ex_id="g")], make_ctx(tmp_path, {}, "e2"))
    assert [e.id for e in dropped] == ["g"]
    assert len((tmp_path / "e2" / "dropped.jsonl").read_text().splitlines()) == 2


def test_tools_without_backend_are_simulated(tmp_path):
    spec = load_spec(__import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "specs" / "openai_tools.json")
    ex = example([("get_weather", {"city": "Rome"})], tools=spec, extra_tools=("book_flight",))
    [done] = ExecuteTools().run([ex], make_ctx(tmp_path, {}, "execute"))
    step = done.reasoning_path[0]
    assert step.ok and step.executor == "simulated" and step.simulated is True
    assert done.metadata["simulated"] is True and done.metadata["executed_steps"]["simulated"] == 1
    json.dumps(step.result)
