"""Budgets against the loopback server: stop at the cap, resume with a raised cap, pay nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthrun import cli
from synthrun.budget import Budget, BudgetConfig, BudgetExhaustedSignal, Caps, parse_budget
from synthrun.io import read_jsonl
from tests.conftest import HDF5_PASSAGES, write_chunk_db
from tests.llm.fake_openai_server import FakeOpenAIServer, messages_hash

CONCURRENCY = 4


def _args(db: Path, url: str, *extra: str) -> list[str]:
    return ["+recipe=qa", f"load.db={db}", "generate.n_pairs=5", "curate.threshold=0", "provider=vllm",
            f"provider.api_base={url}", "provider.model=hosted_vllm/fake", f"provider.concurrency={CONCURRENCY}",
            "provider.max_retries=1", "progress=false", *extra]


def _main(args: list[str], out: Path, monkeypatch) -> int:
    monkeypatch.setenv("SYNTHRUN_OUTPUTS", str(out))
    cli._LAST_RUN.clear()
    return cli.main(args)


def _run_dir(out: Path) -> Path:
    (metrics,) = [p for p in out.rglob("metrics.json") if ".cache" not in p.parts]
    return metrics.parent


def _keys(requests: list[dict]) -> list[str]:
    return [messages_hash(r) + json.dumps({k: r.get(k) for k in ("seed", "max_tokens", "temperature")})
            for r in requests]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """An uncapped run: how many requests the whole recipe needs and what it exports."""
    root = tmp_path_factory.mktemp("clean")
    db = write_chunk_db(root / "chunks.lancedb", HDF5_PASSAGES)
    mp = pytest.MonkeyPatch()
    with FakeOpenAIServer() as server:
        assert _main(_args(db, server.base_url), root / "out", mp) == 0
        requests = len(server.requests)
    mp.undo()
    run_dir = _run_dir(root / "out")
    assert requests > 60
    return db, run_dir, requests


def test_max_calls_stops_then_raised_cap_resumes_without_repeating_a_request(tmp_path, clean, monkeypatch,
                                                                            capsys):
    db, clean_dir, clean_requests = clean
    out = tmp_path / "out"
    with FakeOpenAIServer(latency=0.01) as server:
        code = _main(_args(db, server.base_url, "budget.max_calls=50"), out, monkeypatch)
        first = list(server.requests)
        err = capsys.readouterr().err
        assert code == 4, err
        lines = [ln for ln in err.splitlines() if ln.startswith("synthrun: error:")]
        assert len(lines) == 1 and "Traceback" not in err
        assert "budget exhausted in stage" in lines[0] and "budget.max_calls=50" in lines[0]
        assert "raise the cap" in lines[0]
        assert 0 < len(first) <= 50 + CONCURRENCY
        run_dir = _run_dir(out)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "budget_exhausted"
        last = metrics["stages"][-1]
        assert last["status"] == "partial" and last["llm_failures"].get("budget_exhausted", 0) > 0
        stage_dir = next(run_dir.glob(f"*_{last['name']}"))
        assert (stage_dir / "_PARTIAL").is_file() and not (stage_dir / "_SUCCESS").exists()
        assert not list(run_dir.glob("*_export")), "a stage after the stopped one ran"
        spent = json.loads((run_dir / "budget.json").read_text())["run"]
        assert spent["calls"] == len(first)

        # the same cap again: nothing more is sent
        server.requests.clear()
        assert _main(_args(db, server.base_url, "budget.max_calls=50"), out, monkeypatch) == 4
        assert server.requests == []
        capsys.readouterr()

        # a raised cap resumes the same folder; no request of the first attempt is sent again
        code = _main(_args(db, server.base_url, "budget.max_calls=1000"), out, monkeypatch)
        assert code == 0, capsys.readouterr().err
        second = list(server.requests)
    assert _run_dir(out) == run_dir
    assert not set(_keys(first)) & set(_keys(second))
    assert len(first) + len(second) == clean_requests
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert read_jsonl(next(run_dir.glob("*_export/dataset/*.jsonl"))) == read_jsonl(
        next(clean_dir.glob("*_export/dataset/*.jsonl")))


def test_stage_cap_and_usd_cap(tmp_path, clean, monkeypatch, capsys):
    db, _, _ = clean
    with FakeOpenAIServer() as server:
        code = _main(_args(db, server.base_url, "+budget.stages.enrich.max_calls=3"), tmp_path / "a", monkeypatch)
        err = capsys.readouterr().err
        assert code == 4 and "budget.stages.enrich.max_calls=3" in err
        enrich = [r for r in server.requests if r.get("temperature") == 0.2]
        assert len(enrich) == 3
        server.requests.clear()
        # priced at $1/M in, $2/M out: a $0.002 cap stops within the first stage
        code = _main(_args(db, server.base_url, "+provider.price_in=1.0", "+provider.price_out=2.0",
                           "budget.max_usd=0.002"), tmp_path / "b", monkeypatch)
        err = capsys.readouterr().err
        assert code == 4 and "budget.max_usd=0.002" in err
        spent = json.loads((_run_dir(tmp_path / "b") / "budget.json").read_text())["run"]
        assert 0 < spent["usd"] <= 0.002 and spent["calls"] == len(server.requests)


@pytest.mark.parametrize("override, message", [
    ("budget.max_usd=-1", "budget.max_usd=-1: must be a number of USD >= 0"),
    ("budget.max_calls=2.5", "budget.max_calls=2.5: must be a whole number >= 0"),
    ("budget.max_tokens=lots", "budget.max_tokens='lots'"),
    ("+budget.stages.nope.max_calls=3", "budget.stages.nope: no stage 'nope'"),
    ("+budget.max_dollars=3", "budget.max_dollars: unknown budget key"),
])
def test_bad_budget_is_one_line_error_before_any_call(tmp_path, clean, monkeypatch, capsys, override, message):
    db, _, _ = clean
    with FakeOpenAIServer() as server:
        code = _main(_args(db, server.base_url, override), tmp_path / "out", monkeypatch)
        assert server.requests == []
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("synthrun: error:")]
    assert code == 1 and len(lines) == 1 and message in lines[0], err
    assert not list((tmp_path / "out").rglob("01_load"))


def test_guard_reserves_in_flight_calls_and_refuses_what_could_pass():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"budget": {"max_tokens": 1000, "stages": {"gen": {"max_calls": 2}}}})
    budget = Budget(parse_budget(cfg, ["gen"]))
    guard = budget.guard("gen")
    msgs = [{"role": "user", "content": "x" * 400}]  # 100 prompt tokens + 100 max_tokens = 200 reserved
    t1 = guard.reserve(msgs, {"max_tokens": 100})
    t2 = guard.reserve(msgs, {"max_tokens": 100})
    with pytest.raises(BudgetExhaustedSignal, match="budget.stages.gen.max_calls=2"):
        guard.reserve(msgs, {"max_tokens": 100})  # two in flight: a third could pass the stage cap
    guard.settle(t1, 100, 10)
    guard.settle(t2, 100, 10)
    assert budget.run.spent.calls == 2 and budget.run.spent.tokens == 220 and budget.run.reserved.calls == 0
    other = budget.guard("other")
    for _ in range(3):
        other.settle(other.reserve(msgs, {"max_tokens": 100}), 100, 100)
    with pytest.raises(BudgetExhaustedSignal, match="budget.max_tokens=1000"):
        other.reserve(msgs, {"max_tokens": 100})  # 820 spent + 200 could pass 1000
    assert not BudgetConfig().any() and Caps(max_calls=0).any()
