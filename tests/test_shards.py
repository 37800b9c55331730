"""Streaming shards: per-record stages run shard by shard, give the same files as one call, resume per shard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthrun.api import run_recipe
from synthrun.io import read_jsonl
from synthrun.recordfile import CompactRecords, RecordFile, compact
from synthrun.records import QAPair, Record
from synthrun.stage import StageError
from synthrun.stages.dedup import Dedup
from tests.llm.fake_openai_server import FakeOpenAIServer, FakeOpenAIServerProcess
from tests.shard_recipes import provider_args, qa_rows, write_rate_recipe

ROOT = Path(__file__).resolve().parents[1]
FILES = ["01_load/data.jsonl", "02_probe/data.jsonl", "03_curate/data.jsonl", "03_curate/dropped.jsonl",
         "04_export/data.jsonl", "04_export/dataset/train.chatml.jsonl"]


def _env(recipes: Path, out: Path) -> dict[str, str]:
    return {**os.environ, "SYNTHRUN_RECIPE_PATH": str(recipes), "SYNTHRUN_OUTPUTS": str(out)}


def _run_dir(out: Path) -> Path:
    (metrics,) = [p for p in out.rglob("metrics.json") if ".cache" not in p.parts]
    return metrics.parent


def _stage(run_dir: Path, name: str) -> dict:
    (m,) = [s for s in json.loads((run_dir / "metrics.json").read_text())["stages"] if s["name"] == name]
    return m


@pytest.fixture
def recipes(tmp_path, monkeypatch):
    folder = write_rate_recipe(tmp_path, 50)
    monkeypatch.setenv("SYNTHRUN_RECIPE_PATH", str(folder))
    return folder


def test_sharded_run_writes_what_one_call_writes(tmp_path, recipes):
    with FakeOpenAIServer() as server:
        sharded = run_recipe("shardy", [*provider_args(server.base_url), "shard_size=8"], tmp_path / "a")
        asked = len(server.requests)
        whole = run_recipe("shardy", provider_args(server.base_url), tmp_path / "b")  # 50 < 1000: one call
        assert asked == len(server.requests) - asked == 50
    for rel in FILES:
        assert (sharded / rel).read_bytes() == (whole / rel).read_bytes(), rel
    # the per-record stages saw at most a shard at a time; unsharded, everything at once
    assert [b["n"] for b in read_jsonl(sharded / "02_probe/batches.jsonl")] == [8] * 6 + [2]
    assert [b["n"] for b in read_jsonl(whole / "02_probe/batches.jsonl")] == [50]
    assert not (sharded / "03_curate/shards").exists()  # shard files go once data.jsonl holds them
    for name in ("probe", "curate", "export"):
        a, b = _stage(sharded, name), _stage(whole, name)
        assert (a["rows_in"], a["rows_out"], a["llm_calls"], a["mean_rating"]) == \
            (b["rows_in"], b["rows_out"], b["llm_calls"], b["mean_rating"]), name
    details = json.loads((sharded / "03_curate/summary.json").read_text())["details"]
    assert details["shards"] == {"count": 7, "size": 8, "resumed": 0}
    assert details["kept"] + details["dropped"] == 50  # counts add up over shards
    export = json.loads((sharded / "04_export/summary.json").read_text())["details"]
    assert export["dataset_file"] == str(sharded / "04_export/dataset/train.chatml.jsonl")


def test_a_stage_needing_all_records_gets_them_compact_and_dedups_the_same(tmp_path):
    rows = qa_rows(30) + [{**r, "id": f"dup{i}"} for i, r in enumerate(qa_rows(5))]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stage = Dedup(text_field=["question", "answer"])
    records = compact(RecordFile(path), stage, "dedup", "load")
    assert isinstance(records, CompactRecords) and len(records) == 35
    assert records[3].id == "q00003" and [r.id for r in records[33:]] == ["dup3", "dup4"]
    from synthrun.context import StageContext

    ctx = StageContext(name="dedup", run_id="t", run_dir=tmp_path, stage_dir=tmp_path)
    kept = stage.run(records, ctx)
    as_list = stage.run([Record.model_validate(r) for r in rows], ctx)
    assert [r.model_dump() for r in kept] == [r.model_dump() for r in as_list]
    assert {"dup0", "dup4"}.isdisjoint(r.id for r in kept) and len(kept) < 30
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x1", "question": "q?"}) + "\n")
    with pytest.raises(StageError, match="record x1 from 'load' does not fit"):
        compact(RecordFile(bad), type("S", (), {"input_type": QAPair})(), "curate", "load")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0", "-3", "abc"])
def test_bad_shard_size_is_one_line_before_any_work(tmp_path, recipes, value, capsys, monkeypatch):
    from synthrun.cli import main

    monkeypatch.setenv("SYNTHRUN_OUTPUTS", str(tmp_path / "out"))
    assert main(["+recipe=shardy", f"shard_size={value}", *provider_args("http://127.0.0.1:9/v1")]) == 1
    err = capsys.readouterr().err.strip()
    shown = repr(int(value)) if value.lstrip("-").isdigit() else repr(value)
    assert err == f"synthrun: error: shard_size={shown}: must be a whole number of records >= 1 (e.g. shard_size=1000)"
    assert not list((tmp_path / "out").rglob("data.jsonl"))


def _wait(pred, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not pred() and time.time() < deadline:
        time.sleep(0.02)


def test_sigkill_mid_stage_resumes_after_the_last_finished_shard(tmp_path):
    recipes = write_rate_recipe(tmp_path, 60)
    conc = 2
    with FakeOpenAIServerProcess() as server:  # the uninterrupted run
        args = [sys.executable, "-m", "synthrun", "+recipe=shardy", "shard_size=6",
                *provider_args(server.base_url, conc)]
        clean = subprocess.run(args, cwd=ROOT, env=_env(recipes, tmp_path / "clean"), capture_output=True,
                               text=True, timeout=300)
        assert clean.returncode == 0, clean.stderr
        clean_requests = server.stats()["requests"]
    assert clean_requests == 60
    clean_dir = _run_dir(tmp_path / "clean")

    server = FakeOpenAIServerProcess(latency=0.05).start()
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    args = [sys.executable, "-m", "synthrun", "+recipe=shardy", "shard_size=6", *provider_args(server.base_url, conc)]
    out = tmp_path / "killed"
    proc = subprocess.Popen(args, cwd=ROOT, env=_env(recipes, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait(lambda: server.stats()["answered"] >= 27)  # four and a half shards of the curate stage
    proc.kill()  # SIGKILL: no handler runs
    proc.wait(60)
    sent = server.stats()["requests"]
    server.stop()
    run_dir = _run_dir(out)
    shard_dir = run_dir / "03_curate" / "shards"
    done = sorted(p.name for p in shard_dir.glob("*.done"))
    assert 3 <= len(done) < 10 and not (run_dir / "03_curate" / "_SUCCESS").exists()
    assert all((shard_dir / n.replace(".done", ".jsonl")).is_file() for n in done)

    with FakeOpenAIServerProcess(port=port) as server:  # the same command again
        resumed = subprocess.run(args, cwd=ROOT, env=_env(recipes, out), capture_output=True, text=True,
                                 timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        resent = server.stats()["requests"]
    assert sent + resent <= clean_requests + conc  # only the calls in flight at the kill are asked twice
    assert sent >= 27 and resent <= clean_requests - len(done) * 6
    for rel in FILES:
        assert (run_dir / rel).read_bytes() == (clean_dir / rel).read_bytes(), rel
    ids = [r["id"] for r in read_jsonl(run_dir / "03_curate/data.jsonl")]
    assert len(ids) == len(set(ids))
    details = json.loads((run_dir / "03_curate/summary.json").read_text())["details"]
    assert details["shards"] == {"count": 10, "size": 6, "resumed": len(done)}
    assert _stage(run_dir, "curate")["llm_calls"] == 60  # earlier shards' calls are counted once


def test_a_stage_reading_in_passes_gets_a_stream_that_validates_each_record(tmp_path):
    from synthrun.recordfile import RecordStream

    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in qa_rows(3)) + json.dumps({"id": "x1"}) + "\n")
    stream = RecordStream(RecordFile(path), type("S", (), {"input_type": QAPair})(), "curate", "load")  # type: ignore[arg-type]
    assert len(stream) == 4 and Dedup.streams_input
    seen = []
    with pytest.raises(StageError, match="record x1 from 'load' does not fit"):
        for record in stream:
            seen.append(record.id)
    assert seen == ["q00000", "q00001", "q00002"] and all(isinstance(r, str) for r in seen)
    assert [r.id for r in RecordStream(RecordFile(path), Dedup(), "dedup", "load")][:2] == ["q00000", "q00001"]
