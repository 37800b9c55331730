"""The runner under faults, with real processes and the loopback server: nothing lost, nothing paid twice.

A dead or killed server, a cache disk that fills up, two runs on one folder: each run stops with
one line and the same command then gives exactly the records of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthrun.api import run_recipe
from synthrun.io import read_jsonl
from tests.conftest import write_chunk_db
from tests.llm.fake_openai_server import FakeOpenAIServer, FakeOpenAIServerProcess

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["load", "generate", "enrich", "filter", "curate", "export"]  # recipes/qa.yaml

# Writes fail like a full disk after LIMIT stored answers (sqlite's own error and code).
FULL_DISK = """
import sqlite3, sys
from synthrun.llm import cache
real, n, limit = cache.ResponseCache._insert, [0], int(sys.argv[1])
def full(self, rows):
    n[0] += 1
    if n[0] > limit:
        err = sqlite3.OperationalError("database or disk is full")
        err.sqlite_errorname = "SQLITE_FULL"
        raise err
    return real(self, rows)
cache.ResponseCache._insert = full
from synthrun.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _args(db: Path, url: str, max_retries: int = 1) -> list[str]:
    return ["+recipe=qa", f"load.db={db}", "generate.n_pairs=3", "curate.threshold=0", "provider=vllm",
            f"provider.api_base={url}", "provider.model=hosted_vllm/fake", "provider.concurrency=2",
            f"provider.max_retries={max_retries}", "+provider.retry_backoff=0.05", "+provider.circuit_breaker=3",
            "+provider.circuit_breaker_s=0", "progress=false"]


def _env(out: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "SYNTHRUN_OUTPUTS": str(out), **extra}


def _start(args: list[str], out: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "synthrun", *args], cwd=ROOT, env=_env(out, **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _run(args: list[str], out: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synthrun", *args], cwd=ROOT, env=_env(out, **env),
                          capture_output=True, text=True, timeout=300)


def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    (line,) = [ln for ln in stderr.splitlines() if ln.startswith("synthrun: error:")]
    return line


def _run_dir(out: Path) -> Path:
    (metrics,) = [p for p in out.rglob("metrics.json") if ".cache" not in p.parts]
    return metrics.parent


def _wait_answered(server, n: int) -> None:
    deadline = time.time() + 120
    while server.stats()["answered"] < n and time.time() < deadline:
        time.sleep(0.02)


def _assert_same_records(run_a: Path, run_b: Path) -> None:
    data_b = sorted(run_b.glob("*/data.jsonl"))
    assert [p.parent.name for p in sorted(run_a.glob("*/data.jsonl"))] == [p.parent.name for p in data_b]
    for data in data_b:
        assert read_jsonl(run_a / data.parent.name / "data.jsonl") == read_jsonl(data), data.parent.name
    (export_b,) = run_b.glob("*_export")
    exported = sorted(export_b.rglob("*.jsonl"))
    assert exported
    for f in exported:
        assert (run_a / f.relative_to(run_b)).read_bytes() == f.read_bytes()
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (run_a, run_b))
    assert ma["status"] == mb["status"] == "completed" and ma["rows_final"] == mb["rows_final"] > 0
    assert not list(run_a.glob("*/_PARTIAL"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """One uninterrupted run: its chunk db, run folder, request count and requests per stage."""
    root = tmp_path_factory.mktemp("clean")
    db = write_chunk_db(root / "chunks.lancedb")
    with FakeOpenAIServerProcess() as server:
        proc = _run(_args(db, server.base_url), root / "out")
        assert proc.returncode == 0, proc.stderr
        requests = server.stats()["requests"]
    run_dir = _run_dir(root / "out")
    calls = {s["name"]: s["llm_calls"] for s in json.loads((run_dir / "metrics.json").read_text())["stages"]}
    assert requests == sum(calls.values()) and calls["generate"] == 12
    return db, run_dir, requests, calls


@pytest.mark.parametrize("stage", ["generate", "enrich", "curate"])
def test_server_killed_mid_stage_then_rerun_equals_uninterrupted_run(tmp_path, clean, stage):
    db, clean_dir, clean_requests, calls = clean
    before = sum(calls[s] for s in STAGES[: STAGES.index(stage)])
    server = FakeOpenAIServerProcess(latency=0.1).start()
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    args = _args(db, server.base_url)
    proc = _start(args, tmp_path)
    _wait_answered(server, before + 4)
    sent = server.stats()["requests"]
    server.proc.kill()  # the provider dies mid-stage
    server.stop()
    assert proc.wait(120) == 3
    line = _error_line(proc.stderr.read())
    assert f"stage '{stage}' is incomplete" in line and "give the same command again" in line
    run_dir = _run_dir(tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "partial" and metrics["stages"][-1]["status"] == "partial"
    index = STAGES.index(stage) + 1
    stage_dir = run_dir / f"{index:02d}_{stage}"
    partial = json.loads((stage_dir / "_PARTIAL").read_text())
    assert sum(partial["failed"].values()) > 0 and not (stage_dir / "_SUCCESS").exists()
    assert not (run_dir / f"{index + 1:02d}_{STAGES[index]}").exists(), "downstream ran on an incomplete stage"
    with FakeOpenAIServerProcess(port=port) as server:  # the provider is back
        resumed = _run(args, tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        resent = server.stats()["requests"]
    assert sent + resent <= clean_requests + 2  # at most the 2 in flight at the kill are asked twice
    _assert_same_records(run_dir, clean_dir)


def test_server_down_fails_fast_in_one_line_then_resumes(tmp_path, clean):
    db, clean_dir, clean_requests, calls = clean
    with FakeOpenAIServerProcess() as server:
        server.set_mode("503")  # listening, but every request fails
        args = _args(db, server.base_url, max_retries=4)
        proc = _run(args, tmp_path)
        assert proc.returncode == 1
        line = _error_line(proc.stderr)
        assert "all 12 LLM calls failed" in line and "circuit_open=" in line
        # without the breaker: 12 requests x 5 attempts = 60; with it: 3 failures in a row + 2 in flight
        assert server.stats()["requests"] <= 5
        server.set_mode("")
        server.reset()
        resumed = _run(args, tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert server.stats()["requests"] == clean_requests
    _assert_same_records(_run_dir(tmp_path), clean_dir)


def test_full_cache_disk_stops_in_one_line_and_loses_no_answer(tmp_path, clean):
    db, clean_dir, clean_requests, calls = clean
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with FakeOpenAIServerProcess() as server:
        args = _args(db, server.base_url)
        limit = calls["generate"] + 3  # the disk fills up during enrich
        proc = subprocess.run([sys.executable, "-c", FULL_DISK, str(limit), *args], cwd=ROOT, timeout=300,
                              env=_env(tmp_path / "out", TMPDIR=str(tmp)), capture_output=True, text=True)
        assert proc.returncode == 1
        line = _error_line(proc.stderr)
        cache_file = tmp_path / "out" / ".cache" / "llm.sqlite"
        assert f"cannot write {cache_file}: database or disk is full (SQLITE_FULL)" in line
        assert "free space" in line
        run_dir = _run_dir(tmp_path / "out")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "failed" and metrics["stages"][-1]["name"] == "enrich"
        assert metrics["stages"][-1]["llm_failures"].get("storage", 0) > 0
        assert list(tmp.rglob("*.jsonl")), "the answers the cache refused are kept"
        first = server.stats()["requests"]
        assert first < clean_requests
        # space freed: the same command finishes and no answer received before is asked again
        resumed = _run(args, tmp_path / "out", TMPDIR=str(tmp))
        assert resumed.returncode == 0, resumed.stderr
        assert server.stats()["requests"] == clean_requests
    assert not list(tmp.rglob("*.jsonl"))
    _assert_same_records(run_dir, clean_dir)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 160 KB tmpfs (root only): the cache disk that really fills up."""
    mount = tmp_path / "fs"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_cache_on_a_full_tmpfs_resumes_after_space_is_freed(tmp_path, clean, tiny_tmpfs):
    db, clean_dir, clean_requests, calls = clean
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    with FakeOpenAIServerProcess() as server:
        args = [*_args(db, server.base_url), f"paths.cache_dir={tiny_tmpfs}"]
        proc = _run(args, out, TMPDIR=str(tmp))
        assert proc.returncode == 1
        assert f"cannot write {tiny_tmpfs}/llm.sqlite: database or disk is full (SQLITE_FULL)" in \
            _error_line(proc.stderr)
        assert 0 < server.stats()["requests"] < clean_requests
        subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_tmpfs)], check=True)  # space freed
        resumed = _run(args, out, TMPDIR=str(tmp))
        assert resumed.returncode == 0, resumed.stderr
        assert server.stats()["requests"] == clean_requests  # every answer received was kept
    _assert_same_records(_run_dir(out), clean_dir)


def test_second_run_on_the_same_folder_is_refused(tmp_path, clean):
    db, clean_dir, clean_requests, calls = clean
    with FakeOpenAIServerProcess() as server:
        server.set_mode("hang:2")  # slow answers: the first run is surely still working
        args = _args(db, server.base_url)
        first = _start(args, tmp_path)
        deadline = time.time() + 120
        while server.stats()["requests"] < 1 and time.time() < deadline:
            time.sleep(0.02)
        second = _run(args, tmp_path)
        server.set_mode("")
        assert first.wait(120) == 0, first.stderr.read()
        total = server.stats()["requests"]
    assert second.returncode == 1
    line = _error_line(second.stderr)
    assert "is in use by pid" in line and f"pid {first.pid} " in line
    assert total == clean_requests, "the refused run must not spend anything"
    _assert_same_records(_run_dir(tmp_path), clean_dir)


def _inprocess_args(url: str, db: Path) -> list[str]:
    return ["provider=vllm", f"provider.api_base={url}", "provider.model=hosted_vllm/fake", "provider.concurrency=1",
            "provider.max_retries=0", "+provider.circuit_breaker=0", "progress=false", f"load.db={db}",
            "curate.threshold=0"]


def test_failures_can_be_accepted_per_stage(tmp_path, chunk_db):
    out = tmp_path / "out"
    with FakeOpenAIServer() as server:
        args = _inprocess_args(server.base_url, chunk_db)
        server.fail_next("503", "503")  # 2 of generate's 4 requests fail
        with pytest.raises(RuntimeError, match="exit code 3"):
            run_recipe("qa", args, output_root=out)
        run_dir = _run_dir(out)
        assert json.loads((run_dir / "02_generate" / "_PARTIAL").read_text())["failed"] == {"http_5xx": 2}
        assert len(server.requests) == 4
        server.fail_next("503", "503")  # they fail again: accept half of the stage's calls failing
        again = run_recipe("qa", [*args, "+generate.max_failure_rate=0.5"], output_root=out)
        assert again == run_dir, "accepting failures keeps the run folder"
        sent = len(server.requests)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    paid = {s["name"]: s["llm_calls"] - s["cache_hits"] for s in metrics["stages"]}
    assert paid["generate"] == 2 and paid["enrich"] > 0 and paid["curate"] > 0
    assert sent == 4 + 2 + paid["enrich"] + paid["curate"]  # only the 2 failed calls were retried
    generate = metrics["stages"][1]
    assert metrics["status"] == "completed" and generate["status"] == "accepted"
    assert (generate["llm_calls"], generate["cache_hits"], generate["rows_out"]) == (4, 2, 2)
    assert (run_dir / "02_generate" / "_SUCCESS").is_file() and not (run_dir / "02_generate" / "_PARTIAL").exists()


def test_failed_rerun_keeps_a_finished_run(tmp_path, chunk_db):
    out = tmp_path / "out"
    with FakeOpenAIServer() as server:
        args = [*_inprocess_args(server.base_url, chunk_db), "run_name=keep"]
        run_dir = run_recipe("qa", args, output_root=out)
        kept = sorted([run_dir / "config.yaml", run_dir / "metrics.json", *run_dir.glob("*/_SUCCESS"),
                       *run_dir.glob("*/data.jsonl")])
        before = {p: p.read_bytes() for p in kept}
        bad = [a for a in args if not a.startswith("load.db=")] + [f"load.db={tmp_path}/missing.lancedb"]
        with pytest.raises(RuntimeError):
            run_recipe("qa", bad, output_root=out)
        assert {p: p.read_bytes() for p in kept} == before
        attempt = json.loads((run_dir / "metrics.attempt.json").read_text())
        assert attempt["status"] == "failed" and "missing.lancedb" in attempt["error"]
        assert "missing.lancedb" in (run_dir / "config.attempt.yaml").read_text()
        run_recipe("qa", args, output_root=out)  # the good command again: nothing to redo, side files gone
    assert not (run_dir / "metrics.attempt.json").exists() and not (run_dir / "config.attempt.yaml").exists()
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"


def test_outputs_follow_the_umask_and_retention_is_per_generated_row(tmp_path, chunk_db):
    with FakeOpenAIServer() as server:
        run_dir = run_recipe("qa", _inprocess_args(server.base_url, chunk_db), output_root=tmp_path / "out")
    mode = stat.S_IMODE((run_dir / "config.yaml").stat().st_mode)
    files = [p for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock" and ".hydra" not in p.parts]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: mode for p in files}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    by_name = {s["name"]: s for s in metrics["stages"]}
    for s in metrics["stages"]:
        assert s["retention"] == (round(s["rows_out"] / s["rows_in"], 4) if s["rows_in"] else None)
    assert metrics["retention"] == round(metrics["rows_final"] / by_name["generate"]["rows_out"], 4) <= 1


def test_unwritable_output_folder_is_one_line(tmp_path, chunk_db):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    proc = _run(["+recipe=qa", f"load.db={chunk_db}", "progress=false"], blocker / "out")
    assert proc.returncode == 1
    line = _error_line(proc.stderr)
    assert str(blocker) in line and "ENOTDIR" in line and len(proc.stderr.splitlines()) <= 2


def test_read_only_output_folder_is_one_line(tmp_path, chunk_db):
    mount = tmp_path / "ro"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    try:
        proc = _run(["+recipe=qa", f"load.db={chunk_db}", "progress=false"], mount / "out")
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert proc.returncode == 1
    assert _error_line(proc.stderr) == f"synthrun: error: cannot write {mount}/out: Read-only file system (EROFS)"
    assert len(proc.stderr.splitlines()) == 1


@pytest.mark.parametrize("value", ["0", "-3"])
def test_concurrency_below_one_is_a_one_line_error(tmp_path, value, capsys):
    from synthrun.cli import main

    assert main(["validate", "qa", f"provider.concurrency={value}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"synthrun: error: provider.concurrency={int(value)}: must be a whole number >= 1 " \
                  "(requests in flight at once)"


@pytest.mark.parametrize("override, message", [
    ("+generate.max_failure_rate=2", "generate.max_failure_rate=2: must be a share between 0 and 1"),
    ("+curate.llm.concurrency=0", "curate.llm.concurrency=0: must be a whole number >= 1"),
])
def test_bad_failure_rate_or_stage_concurrency_is_one_line(override, message, capsys):
    from synthrun.cli import main

    assert main(["validate", "qa", override]) == 1
    assert capsys.readouterr().err.startswith(f"synthrun: error: {message}")
