"""The runner against a real OpenAI-compatible server on 127.0.0.1: layout, resume, sweeps, secrets."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthrun.api import run_recipe
from synthrun.io import read_jsonl
from synthrun.metrics import RunMetrics
from tests.llm.fake_openai_server import FakeOpenAIServer, FakeOpenAIServerProcess

ROOT = Path(__file__).resolve().parents[1]


def _provider(url: str, concurrency: int = 4) -> list[str]:
    return ["provider=vllm", f"provider.api_base={url}", "provider.model=hosted_vllm/fake",
            f"provider.concurrency={concurrency}", "provider.max_retries=1", "progress=false"]


def _files(run_dir: Path) -> set[str]:
    return {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file() and ".hydra" not in p.parts}


def test_run_layout_and_metrics_schema(tmp_path, chunk_db):
    with FakeOpenAIServer() as server:
        run_dir = run_recipe("qa", [*_provider(server.base_url), f"load.db={chunk_db}", "curate.threshold=0"],
                             output_root=tmp_path / "out")
        n_requests = len(server.requests)
    files = _files(run_dir)
    assert {"config.yaml", "metrics.json", "run.log"} <= files
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    metrics = RunMetrics.model_validate_json((run_dir / "metrics.json").read_text())
    assert metrics.status == "completed" and metrics.recipe == "qa"
    names = [s.name for s in metrics.stages]
    for i, name in enumerate(names, 1):
        stage_dir = run_dir / f"{i:02d}_{name}"
        assert (stage_dir / "data.jsonl").is_file() and (stage_dir / "_SUCCESS").is_file()
        summary = json.loads((stage_dir / "summary.json").read_text())
        assert summary["metrics"]["name"] == name
        assert summary["metrics"]["rows_out"] == len(read_jsonl(stage_dir / "data.jsonl"))
    assert metrics.llm_calls == n_requests > 0
    assert metrics.rows_final == metrics.stages[-1].rows_out == 4
    assert metrics.tokens_in > 0 and metrics.tokens_out > 0
    # a second identical command resumes: every stage is already done, no request is sent
    with FakeOpenAIServer() as server:
        again = run_recipe("qa", [*_provider(server.base_url), f"load.db={chunk_db}", "curate.threshold=0"],
                           output_root=tmp_path / "out")
        assert again == run_dir and server.requests == []


def test_bad_input_is_one_line_error_and_keeps_outputs(tmp_path, chunk_db):
    out = tmp_path / "out"
    env = {**os.environ, "SYNTHRUN_OUTPUTS": str(out)}
    proc = subprocess.run([sys.executable, "-m", "synthrun", "+recipe=qa", f"load.db={tmp_path}/missing.lancedb",
                           "progress=false"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert proc.returncode == 1
    err_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("synthrun: error:")]
    assert len(err_lines) == 1 and "missing.lancedb" in err_lines[0]
    assert "Traceback" not in proc.stderr
    (metrics_file,) = out.rglob("metrics.json")
    assert json.loads(metrics_file.read_text())["status"] == "failed"


def _run_cli(args: list[str], out: Path) -> subprocess.Popen:
    env = {**os.environ, "SYNTHRUN_OUTPUTS": str(out)}
    return subprocess.Popen([sys.executable, "-m", "synthrun", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _qa_args(chunk_db: Path, server) -> list[str]:
    return ["+recipe=qa", f"load.db={chunk_db}", "generate.n_pairs=6", "curate.threshold=0",
            *_provider(server.base_url, concurrency=2)]


def _signal_mid_run(args: list[str], out: Path, server, sig: int) -> subprocess.Popen:
    """Start a run and send it ``sig`` once the server has answered 4 requests."""
    proc = _run_cli(args, out)
    deadline = time.time() + 180  # a loaded machine can take a minute to start the run
    while server.stats()["answered"] < 4 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    return proc


def test_sigkill_mid_stage_then_resume_equals_uninterrupted_run(tmp_path, chunk_db):
    with FakeOpenAIServerProcess(latency=0.15) as server:
        full = _qa_args(chunk_db, server)
        _signal_mid_run(full, tmp_path / "a", server, signal.SIGKILL).wait()
        before_kill = server.stats()["requests"]
        killed = [json.loads(m.read_text()) for m in (tmp_path / "a").rglob("metrics.json")]
        # metrics.json is written at the start: a killed run shows as running, with its last heartbeat
        assert [(m["status"], bool(m["heartbeat"])) for m in killed] == [("running", True)]
        resumed = _run_cli(full, tmp_path / "a")
        assert resumed.wait(120) == 0, resumed.stderr.read()
        total_a = server.stats()["requests"]
        server.reset()
        clean = _run_cli(full, tmp_path / "b")
        assert clean.wait(120) == 0, clean.stderr.read()
        total_b = server.stats()["requests"]
    assert 4 <= before_kill < total_b, "the kill must land mid-run"
    # finished calls are not redone: at most the requests in flight at the kill are sent twice
    assert total_a <= total_b + 2
    (run_a,) = [p.parent for p in (tmp_path / "a").rglob("metrics.json")]
    (run_b,) = [p.parent for p in (tmp_path / "b").rglob("metrics.json")]
    assert _files(run_a) == _files(run_b)
    for data in sorted(run_b.glob("*/data.jsonl")):
        rows_a = read_jsonl(run_a / data.parent.name / "data.jsonl")
        rows_b = read_jsonl(data)
        assert rows_a == rows_b, data.parent.name
        assert len({r["id"] for r in rows_b}) == len(rows_b), "duplicates"
    (export_b,) = run_b.glob("*_export")
    for f in export_b.rglob("*.jsonl"):
        assert (run_a / f.relative_to(run_b)).read_text() == f.read_text()
    ma = RunMetrics.model_validate_json((run_a / "metrics.json").read_text())
    mb = RunMetrics.model_validate_json((run_b / "metrics.json").read_text())
    for sa, sb in zip(ma.stages, mb.stages, strict=True):
        assert (sa.name, sa.rows_in, sa.rows_out, sa.llm_calls, sa.tokens_in, sa.tokens_out) == \
               (sb.name, sb.rows_in, sb.rows_out, sb.llm_calls, sb.tokens_in, sb.tokens_out)
    assert ma.rows_final == mb.rows_final and ma.llm_calls == mb.llm_calls
    assert ma.cache_hits > 0 and mb.cache_hits == 0


def test_ctrl_c_mid_stage_is_one_line_and_resumable(tmp_path, chunk_db):
    with FakeOpenAIServerProcess(latency=0.15) as server:
        full = _qa_args(chunk_db, server)
        proc = _signal_mid_run(full, tmp_path / "a", server, signal.SIGINT)
        assert proc.wait(30) == 130
        err = proc.stderr.read()
        assert "Traceback" not in err
        assert [ln for ln in err.splitlines() if ln.startswith("synthrun: error:")] == [
            "synthrun: error: interrupted; give the same command again to resume (finished stages and "
            "answered LLM calls are kept)"]
        (metrics_file,) = (tmp_path / "a").rglob("metrics.json")
        assert json.loads(metrics_file.read_text())["status"] == "interrupted"
        resumed = _run_cli(full, tmp_path / "a")
        assert resumed.wait(120) == 0, resumed.stderr.read()
    metrics = json.loads(metrics_file.read_text())
    assert metrics["status"] == "completed" and metrics["cache_hits"] > 0


def test_sigterm_mid_stage_is_interrupted_exit_143_and_resumable(tmp_path, chunk_db):
    with FakeOpenAIServerProcess(latency=0.15) as server:
        full = _qa_args(chunk_db, server)
        proc = _signal_mid_run(full, tmp_path / "a", server, signal.SIGTERM)
        assert proc.wait(30) == 143
        err = proc.stderr.read()
        assert "Traceback" not in err
        (line,) = [ln for ln in err.splitlines() if ln.startswith("synthrun: error:")]
        assert "interrupted; give the same command again to resume" in line
        (metrics_file,) = (tmp_path / "a").rglob("metrics.json")
        assert json.loads(metrics_file.read_text())["status"] == "interrupted"
        resumed = _run_cli(full, tmp_path / "a")
        assert resumed.wait(120) == 0, resumed.stderr.read()
    metrics = json.loads(metrics_file.read_text())
    assert metrics["status"] == "completed" and metrics["cache_hits"] > 0


def test_multirun_over_two_thresholds_gives_comparable_runs(tmp_path, chunk_db):
    with FakeOpenAIServer() as server:
        sweep = run_recipe("qa", [*_provider(server.base_url), f"load.db={chunk_db}", "generate.n_pairs=2",
                                  "curate.threshold=0,10", "sweep_name=t"], output_root=tmp_path / "out",
                           multirun=True)
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(runs) == 2
    assert [r.name.split("curate.threshold=")[1].split(",")[0] for r in runs] == ["0", "10"]
    assert _files(runs[0]) == _files(runs[1])
    m = [json.loads((r / "metrics.json").read_text()) for r in runs]
    assert list(m[0]) == list(m[1])
    assert [s["name"] for s in m[0]["stages"]] == [s["name"] for s in m[1]["stages"]]
    curate = [next(s for s in x["stages"] if s["name"] == "curate") for x in m]
    assert curate[0]["rows_out"] == curate[0]["rows_in"] > 0  # threshold 0 keeps every rated pair
    dropped = read_jsonl(runs[1] / "05_curate" / "dropped.jsonl")
    assert len(dropped) == curate[1]["rows_in"] - curate[1]["rows_out"] > 0
    assert all(d["reason"] == "below_threshold" and d["record"]["rating"]["total"] < 10 for d in dropped)
    assert all(r["rating"]["total"] >= 10 for r in read_jsonl(runs[1] / "05_curate" / "data.jsonl"))
    assert m[0]["rows_final"] > m[1]["rows_final"]
    # the second run's generation is answered by the shared cache
    gen = [s for s in m[1]["stages"] if s["name"] == "generate"][0]
    assert gen["cache_hits"] == gen["llm_calls"] > 0
    with open(sweep / "sweep_summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == [r.name for r in runs]
    assert [int(r["rows_final"]) for r in rows] == [x["rows_final"] for x in m]
    assert (sweep / "sweep_summary.md").read_text().count("\n") == 4


def test_multirun_over_two_providers_gives_comparable_runs(tmp_path, chunk_db, monkeypatch):
    fake_key = "sk-synthrun-sweep-" + "0a1b2c3d4e5f" * 3
    monkeypatch.setenv("OPENAI_API_KEY", fake_key)
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
        monkeypatch.setenv("VLLM_API_BASE", server.base_url)
        sweep = run_recipe("qa", ["provider=vllm,openai", f"load.db={chunk_db}", "curate.threshold=0",
                                  "progress=false", "sweep_name=p"], output_root=tmp_path / "out", multirun=True)
        models = {r["model"] for r in server.requests}
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert [r.name.split(",")[-1] for r in runs] == ["provider=openai", "provider=vllm"]
    m = [json.loads((r / "metrics.json").read_text()) for r in runs]
    assert [x["provider"] for x in m] == ["openai", "vllm"]
    assert {x["model"] for x in m} == {"openai/gpt-4o-mini", "hosted_vllm/Qwen/Qwen2.5-7B-Instruct"}
    assert models == {"gpt-4o-mini", "Qwen/Qwen2.5-7B-Instruct"}, "each run must call its own model"
    assert list(m[0]) == list(m[1]) and _files(runs[0]) == _files(runs[1])
    assert all(x["status"] == "completed" and x["llm_calls"] > 0 and x["cache_hits"] == 0 for x in m)
    with open(sweep / "sweep_summary.csv") as fh:
        assert [r["provider"] for r in csv.DictReader(fh)] == ["openai", "vllm"]
    assert not [p for p in sweep.rglob("*") if p.is_file() and fake_key.encode() in p.read_bytes()]


def test_key_from_environment_is_used_but_never_saved(tmp_path, chunk_db, monkeypatch):
    fake_key = "sk-synthrun-test-" + "9f8e7d6c5b4a" * 3
    monkeypatch.setenv("OPENAI_API_KEY", fake_key)
    out = tmp_path / "out"
    with FakeOpenAIServer() as server:
        run_recipe("qa", ["provider=openai", f"provider.api_base={server.base_url}", "provider.model=openai/fake",
                          "progress=false", f"load.db={chunk_db}", "curate.threshold=0"], output_root=out)
        auth = {h.get("Authorization") or h.get("authorization") for h in server.headers}
    assert auth == {f"Bearer {fake_key}"}, "the key from the environment must reach the server"
    leaked = [p for p in out.rglob("*") if p.is_file() and fake_key.encode() in p.read_bytes()]
    assert leaked == []
    assert not any(fake_key in str(p) for p in out.rglob("*"))


@pytest.mark.parametrize("override", ["provider.api_key={key}", "provider.extra.token={key}", "x={key}"])
def test_key_on_the_command_line_is_refused(tmp_path, override):
    key = "sk-" + "abcdef0123456789" * 3
    proc = subprocess.run([sys.executable, "-m", "synthrun", "+recipe=qa", override.format(key=key)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "SYNTHRUN_OUTPUTS": str(tmp_path)})
    assert proc.returncode == 2 and "refusing override" in proc.stderr and key not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def _cli(args: list[str], out: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNTHRUN_OUTPUTS": str(out), **(env or {})}
    return subprocess.run([sys.executable, "-m", "synthrun", *args, "progress=false"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


def test_missing_key_fails_at_once_in_one_line(tmp_path, chunk_db):
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "synthrun", "+recipe=qa", "provider=openai",
                           "provider.api_base=http://127.0.0.1:9/v1", f"load.db={chunk_db}", "progress=false"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**env, "SYNTHRUN_OUTPUTS": str(tmp_path)})
    assert proc.returncode == 1
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("synthrun: error:")]
    assert "OPENAI_API_KEY" in line and "no request was sent" in line
    (metrics_file,) = tmp_path.rglob("metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["status"] == "failed" and [s["name"] for s in metrics["stages"]] == ["load"]


def test_unreachable_provider_fails_the_run_and_counts_each_failure_once(tmp_path, chunk_db):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = _cli(["+recipe=qa", "provider=vllm", f"provider.api_base=http://127.0.0.1:{port}/v1",
                 "provider.model=hosted_vllm/fake", "provider.max_retries=0", f"load.db={chunk_db}"], tmp_path)
    assert proc.returncode == 1
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("synthrun: error:")]
    assert "all 4 LLM calls failed (connection=4)" in line and f"127.0.0.1:{port}" in line
    (metrics_file,) = tmp_path.rglob("metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["status"] == "failed"
    generate = metrics["stages"][-1]
    assert generate["name"] == "generate" and generate["llm_calls"] == 4
    assert generate["llm_failures"] == {"connection": 4}  # requests, counted once each
    assert metrics["llm_failures_by_reason"] == {"generate:connection": 4}
    assert sum(generate["failures"].values()) == 4  # the records those requests would have made
    stage_dir = metrics_file.parent / "02_generate"
    assert not (stage_dir / "_SUCCESS").exists(), "a failed stage must run again next time"
