"""Executors: the real h5py executor over generated files, reference passing, and the simulated one."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from synthrun.tools import hdf5_fixtures
from synthrun.tools.executors import build_engine, parse_ref
from synthrun.tools.executors.simulated import SimulatedExecutor
from synthrun.tools.loading import load_spec

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"


@pytest.fixture(scope="module")
def hdf5():
    return load_spec("recipes/data/hdf5_tools.json")


@pytest.fixture
def engine(tmp_path):
    eng = build_engine(["hdf5", "simulated"], tmp_path)
    yield eng
    eng.close()


def test_fixtures_have_groups_datasets_attributes_and_layouts(tmp_path):
    files = hdf5_fixtures.build_fixtures(tmp_path)
    assert set(files) == {"climate.h5", "experiment.h5"}
    with h5py.File(files["climate.h5"], "r") as f:
        t = f["/measurements/temperature"]
        assert t.chunks == (1, 240) and t.compression == "gzip" and t.attrs["units"] == "degC"
        assert f["/measurements/pressure"].chunks is None
        assert f["/measurements/humidity"].compression == "lzf"
    inv = hdf5_fixtures.inventory(files["experiment.h5"])
    assert "/run_001/images" in inv["datasets"] and "/run_002" in inv["groups"]
    assert "temperature_K" in inv["attributes"]["/run_001"]
    assert "dataset /run_001/spectra shape=[12, 256]" in hdf5_fixtures.describe(files["experiment.h5"])


def test_real_chain_passes_handles_forward(engine, hdf5):
    trace = engine.trace({"hdf5": {"file": "climate.h5"}}, hdf5.tools)
    o1 = trace.run("open_file", {"file_path": "climate.h5"})
    assert o1.ok and o1.executor == "hdf5" and o1.result["handle"] == "hdf5://climate.h5#/"
    o2 = trace.run("get_by_path", {"parent": "$step1", "path": "/measurements/temperature"})
    assert o2.ok and o2.result_type == "dataset_handle"
    assert o2.resolved_args == {"parent": "hdf5://climate.h5#/", "path": "/measurements/temperature"}
    o3 = trace.run("read_full_dataset", {"dataset": "$step2", "max_elements": 5})
    assert o3.ok and o3.result["shape"] == [8, 720] and o3.result["truncated"] is True
    with h5py.File(engine.executors[0].files["climate.h5"], "r") as f:
        expected = f["/measurements/temperature"][()].reshape(-1)[:5]
    assert np.allclose(o3.result["data"], expected)
    o4 = trace.run("read_attribute", {"handle": "$step2", "name": "units"})
    assert o4.ok and o4.result == "degC"
    o5 = trace.run("get_chunks", {"dataset": "$step2"})
    assert o5.result == [1, 240]
    o6 = trace.run("get_shape", {"dataset": "$step2"})
    assert o6.result == [8, 720]
    trace.close()


def test_failures_are_recorded_not_raised(engine, hdf5):
    trace = engine.trace({}, hdf5.tools)
    assert not trace.run("open_file", {"file_path": "../../etc/passwd"}).ok
    ok = trace.run("open_file", {"file_path": "climate.h5"})
    assert ok.ok
    missing = trace.run("get_by_path", {"parent": "$step2", "path": "/nope"})
    assert not missing.ok and "no group or dataset at '/nope'" in missing.error
    group = trace.run("get_by_path", {"parent": "$step2", "path": "/measurements"})
    assert group.ok and group.result_type == "group_handle"
    not_ds = trace.run("read_full_dataset", {"dataset": "$step4"})
    assert not not_ds.ok and "not a dataset" in not_ds.error
    bad_ref = trace.run("get_shape", {"dataset": "$step9"})
    assert not bad_ref.ok and "earlier step" in bad_ref.error
    closed = trace.run("close_file", {"file": "$step2"})
    assert closed.ok and closed.result is True
    after = trace.run("list_keys", {"group": "$step2"})
    assert not after.ok and "not open" in after.error
    trace.close()


def test_file_level_tools_compute_real_answers(engine, hdf5):
    trace = engine.trace({}, hdf5.tools)
    stats = trace.run("hdf5_aggregate_stats", {"file_path": "climate.h5", "dataset_path": "/measurements/pressure",
                                               "stats": ["mean", "max", "count"]})
    with h5py.File(engine.executors[0].files["climate.h5"], "r") as f:
        p = f["/measurements/pressure"][()].astype("float64")
    assert stats.ok and stats.result["count"] == p.size
    assert stats.result["mean"] == pytest.approx(p.mean()) and stats.result["max"] == pytest.approx(p.max())
    scan = trace.run("hdf5_parallel_scan", {"file_path": "experiment.h5", "pattern": "/run_001/*"})
    assert scan.ok and {d["path"] for d in scan.result["datasets"]} == {
        "/run_001/images", "/run_001/spectra", "/run_001/timestamps"}
    io = trace.run("identify_io_bottlenecks", {"file_path": "climate.h5"})
    issues = {(f["dataset"], f["issue"].split()[0]) for f in io.result["findings"]}
    assert ("/measurements/humidity", "tiny") in issues and ("/measurements/pressure", "contiguous") in issues
    stream = trace.run("hdf5_stream_data", {"file_path": "climate.h5", "dataset_path": "/measurements/pressure",
                                            "block_rows": 3})
    assert [b["start"] for b in stream.result["blocks"]] == [0, 3, 6] and stream.result["complete"]
    similar = trace.run("find_similar_datasets", {"file_path": "climate.h5",
                                                  "dataset_path": "/measurements/temperature", "top_k": 2})
    assert set(similar.result) == {"/measurements/pressure", "/measurements/humidity"}
    batch = trace.run("hdf5_batch_read", {"file_path": "climate.h5", "dataset_paths": ["/stations/names", "/nope"]})
    assert batch.ok and batch.result["results"]["/stations/names"]["data"][0] == "station_A"
    assert "/nope" in batch.result["errors"]
    plan = trace.run("optimize_access_pattern", {"file_path": "climate.h5", "dataset_path": "/measurements/temperature",
                                                 "access_pattern": "column"})
    assert plan.result["recommended_chunks"] == [8, 1] and plan.result["current_chunks"] == [1, 240]
    trace.close()


def test_hints_come_from_the_real_file(engine, hdf5):
    trace = engine.trace({"hdf5": {"file": "experiment.h5"}}, hdf5.tools)
    trace.run("open_file", {"file_path": "experiment.h5"})
    hints = trace.hints(hdf5.get("get_by_path"), {"parent": "$step1"},
                        {"tool": "read_full_dataset", "param": "dataset", "type": "dataset_handle"})
    assert hints["path"] and all(p in hdf5_fixtures.inventory(engine.executors[0].files["experiment.h5"])["datasets"]
                                 for p in hints["path"])
    trace.run("get_by_path", {"parent": "$step1", "path": "/run_001/spectra"})
    assert set(trace.hints(hdf5.get("read_attribute"), {"handle": "$step2"})["name"]) == {"units", "wavelength_nm"}
    assert trace.hints(hdf5.get("open_file"), {})["file_path"] == ["experiment.h5"]
    trace.close()


def test_simulated_executor_shapes_values_by_the_return_schema():
    spec = load_spec(SPECS / "mcp_tools.json")
    engine = build_engine(["hdf5", "simulated"])
    try:
        trace = engine.trace({}, spec.tools)
        out = trace.run("read_file", {"path": "README.md"})
        assert out.ok and out.executor == "simulated"
        assert isinstance(out.result["content"], str) and isinstance(out.result["size"], int)
        again = engine.trace({}, spec.tools).run("read_file", {"path": "README.md"})
        assert again.result == out.result  # deterministic
        assert not trace.run("read_file", {}).ok
    finally:
        engine.close()
    mini = load_spec(SPECS / "mini_synthrun.json")
    session = SimulatedExecutor().open({})
    assert session.call(mini.get("login"), {"username": "ada"}) == "sess-42"  # spec example reused
    assert str(session.call(mini.get("login"), {"username": "bob"})).startswith("sim-session_handle-")
    assert isinstance(session.call(mini.get("find_user"), {"session": "s", "email": "e"}), int)


def test_hdf5_executor_only_claims_its_own_tools(hdf5):
    engine = build_engine(["hdf5", "simulated"])
    try:
        other = load_spec(SPECS / "openai_tools.json").tools[0]
        assert engine.executor_for(hdf5.get("open_file")).name == "hdf5"
        assert engine.executor_for(other).name == "simulated"
    finally:
        engine.close()


def test_reference_syntax():
    assert parse_ref("$step2") == (2, [])
    assert parse_ref("$step3.datasets[0].path") == (3, ["datasets", 0, "path"])
    assert parse_ref("step2") is None and parse_ref(5) is None
