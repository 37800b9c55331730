"""executor=ray: shards run as Ray tasks on a local Ray with 2 CPUs, give the local executor's files and
share the request cache; a Ray address nobody listens on is one line before any work."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from synthrun.api import run_recipe
from synthrun.io import read_jsonl
from tests.llm.fake_openai_server import FakeOpenAIServer
from tests.shard_recipes import provider_args, write_rate_recipe

ROOT = Path(__file__).resolve().parents[2]
FILES = ["01_load/data.jsonl", "02_probe/data.jsonl", "03_curate/data.jsonl", "03_curate/dropped.jsonl",
         "04_export/dataset/train.chatml.jsonl"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("address", ["ray://127.0.0.1:{port}", "127.0.0.1:{port}"])
def test_unreachable_ray_address_is_one_line_before_any_work(tmp_path, monkeypatch, capsys, address):
    from synthrun.cli import main

    monkeypatch.setenv("SYNTHRUN_RECIPE_PATH", str(write_rate_recipe(tmp_path, 10)))
    monkeypatch.setenv("SYNTHRUN_OUTPUTS", str(tmp_path / "out"))
    address = address.format(port=_free_port())
    code = main(["+recipe=shardy", "executor=ray", f"executor.address={address}",
                 *provider_args("http://127.0.0.1:9/v1")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert err.startswith(f"synthrun: error: executor.address='{address}': no Ray cluster reachable there")
    assert not list((tmp_path / "out").rglob("data.jsonl"))


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    path = os.pathsep.join([str(ROOT), *(p for p in sys.path if p)])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_run_gives_the_local_files_and_shares_the_cache(tmp_path, monkeypatch, local_ray):
    monkeypatch.setenv("SYNTHRUN_RECIPE_PATH", str(write_rate_recipe(tmp_path, 40)))
    with FakeOpenAIServer(latency=0.01) as server:
        args = [*provider_args(server.base_url, 2), "shard_size=6"]
        local = run_recipe("shardy", args, tmp_path / "local")
        asked_local = len(server.requests)
        on_ray = run_recipe("shardy", [*args, "executor=ray"], tmp_path / "ray")
        asked_ray = len(server.requests) - asked_local
        # a second Ray run with the same cache file: every worker finds every answer there
        again = run_recipe("shardy", [*args, "executor=ray", "run_name=again"], tmp_path / "ray")
        asked_again = len(server.requests) - asked_local - asked_ray
    assert asked_local == asked_ray == 40 and asked_again == 0
    for rel in FILES:
        assert (on_ray / rel).read_bytes() == (local / rel).read_bytes(), rel
    assert sorted(b["n"] for b in read_jsonl(on_ray / "02_probe/batches.jsonl")) == [4] + [6] * 6
    curate = {s["name"]: s for s in json.loads((again / "metrics.json").read_text())["stages"]}["curate"]
    assert curate["llm_calls"] == curate["cache_hits"] == 40
    assert json.loads((on_ray / "03_curate/summary.json").read_text())["details"]["shards"]["count"] == 7


@pytest.mark.slow
def test_budget_holds_across_ray_workers_and_resumes_without_repeats(tmp_path, monkeypatch, local_ray, capsys):
    """max_calls=15 over 2 workers: one actor meters both, the run stops budget_exhausted; a raised cap
    resumes and sends only the calls still missing (the server's count proves it)."""
    from synthrun import cli

    monkeypatch.setenv("SYNTHRUN_RECIPE_PATH", str(write_rate_recipe(tmp_path, 40)))
    monkeypatch.setenv("SYNTHRUN_OUTPUTS", str(tmp_path / "out"))
    concurrency = 2
    with FakeOpenAIServer(latency=0.02) as server:
        args = ["+recipe=shardy", *provider_args(server.base_url, concurrency), "shard_size=6", "executor=ray",
                "run_name=capped"]
        cli._LAST_RUN.clear()
        code = cli.main([*args, "budget.max_calls=15"])
        first = list(server.requests)
        err = capsys.readouterr().err
        assert code == 4, err
        assert "budget exhausted in stage 'curate'" in err and "budget.max_calls=15" in err
        # two workers, each with `concurrency` calls in flight when the cap refuses
        assert 0 < len(first) <= 15 + 2 * concurrency
        run_dir = next(p.parent for p in (tmp_path / "out").rglob("metrics.json") if ".cache" not in p.parts)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "budget_exhausted"
        assert json.loads((run_dir / "budget.json").read_text())["run"]["calls"] == len(first)

        cli._LAST_RUN.clear()
        assert cli.main([*args, "budget.max_calls=100"]) == 0
        second = server.requests[len(first):]
    asked = [json.dumps(r["messages"], sort_keys=True) for r in first + second]
    assert len(asked) == len(set(asked)) == 40, "every row asked once over both attempts"
    assert json.loads((run_dir / "budget.json").read_text())["run"]["calls"] == 40
    assert len(read_jsonl(run_dir / "03_curate/data.jsonl")) + len(read_jsonl(run_dir / "03_curate/dropped.jsonl")) == 40
