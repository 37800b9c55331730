"""target_rows on the loopback server: rounds on new chunks until exactly N rows pass the judge."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pytest

from synthrun import cli
from synthrun.io import read_jsonl
from synthrun.rounds import next_size
from tests.conftest import write_chunk_db
from tests.llm.fake_openai_server import FakeOpenAIServer, default_logprobs, default_responder, messages_hash

TARGET = 20
_THINGS = ["dataset", "group", "attribute", "chunk", "filter", "table", "index", "cache", "stream", "buffer"]
_VERBS = ["stores", "compresses", "describes", "links", "splits", "reads", "writes", "tracks", "orders", "maps"]


def _passages(n: int = 60) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        a, b = _THINGS[i % 10], _THINGS[(i * 3 + 1) % 10]
        verb, other = _VERBS[(i * 7) % 10], _VERBS[(i + 3) % 10]
        name = f"unit{i:03d}"
        text = (f"The {a} called {name} {verb} every {b} that the file format {other} in blocks of {i + 8} items. "
                f"Each {name} {a} keeps a header with {i + 2} fields describing its {b} layout on disk. "
                f"Readers open the {name} {a} lazily, so only the requested {b} blocks are loaded.")
        out.append((f"Note {i}", text))
    return out


def _fails(request: dict) -> bool:
    """Half of the pairs fail the judge: decided by the question, the same for both checks of a pair."""
    last = request["messages"][-1]["content"]
    m = re.search(r"Question: (.*)", last)
    return bool(m) and int(hashlib.sha256(m.group(1).encode()).hexdigest(), 16) % 2 == 1


def _responder(request: dict) -> str:
    if request.get("max_tokens") == 1:
        return "No" if _fails(request) else "Yes"
    return default_responder(request)


def _logprobs(request: dict, content: str) -> list[tuple[str, float]]:
    if content == "No":
        return [("No", math.log(0.9)), ("Yes", math.log(0.1))]
    return default_logprobs(request, content)


def _args(db: Path, url: str, *extra: str) -> list[str]:
    return ["+recipe=qa", f"load.db={db}", "load.max_chunks=null", "generate.n_pairs=1", f"target_rows={TARGET}",
            "curate.support_weight=0", "filter.use_embeddings=false", "provider=vllm", f"provider.api_base={url}",
            "provider.model=hosted_vllm/fake", "provider.concurrency=4", "provider.max_retries=1",
            "+provider.price_in=1.0", "+provider.price_out=2.0", "progress=false", *extra]


def _main(args: list[str], out: Path, monkeypatch) -> int:
    monkeypatch.setenv("SYNTHRUN_OUTPUTS", str(out))
    cli._LAST_RUN.clear()
    return cli.main(args)


def _run_dir(out: Path) -> Path:
    (metrics,) = [p for p in out.rglob("metrics.json") if ".cache" not in p.parts]
    return metrics.parent


def _exported(run_dir: Path) -> list[dict]:
    (path,) = run_dir.glob("*_export/dataset/*.jsonl")
    return read_jsonl(path)


def _server() -> FakeOpenAIServer:
    return FakeOpenAIServer(responder=_responder, logprob_responder=_logprobs)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return write_chunk_db(tmp_path_factory.mktemp("rounds") / "chunks.lancedb", _passages())


def test_target_rows_runs_rounds_on_new_chunks_until_exactly_n_rows_pass(tmp_path, db, monkeypatch, capsys):
    with _server() as server:
        assert _main(_args(db, server.base_url), tmp_path / "out", monkeypatch) == 0, capsys.readouterr().err
        requests = list(server.requests)
        run_dir = _run_dir(tmp_path / "out")
        rows = _exported(run_dir)
        assert len(rows) == TARGET
        metrics = json.loads((run_dir / "metrics.json").read_text())
        rounds = metrics["rounds"]
        assert metrics["status"] == "completed" and metrics["rows_final"] == TARGET
        assert rounds["target_reached"] and rounds["rows"] == TARGET and len(rounds["rounds"]) >= 2
        first = rounds["rounds"][0]
        assert first["inputs"] == TARGET and 0.2 < first["yield"] < 0.8  # about half fail the judge
        # the second round is sized from the first one's yield
        assert rounds["rounds"][1]["inputs"] == next_size(TARGET, first["kept"], first["inputs"], 60 - TARGET)
        assert sum(r["kept"] for r in rounds["rounds"]) == TARGET + rounds["surplus"]
        assert rounds["cost_per_kept_row"] == pytest.approx(rounds["cost_usd"] / TARGET) and rounds["cost_usd"] > 0
        # every round generated new items: no request sent twice, one pair per chunk, all chunks different
        hashes = [messages_hash(r) for r in requests]
        assert len(hashes) == len(set(hashes))
        gen = read_jsonl(next(run_dir.glob("*_generate/data.jsonl")))
        chunk_ids = [g["provenance"]["chunk_id"] for g in gen]
        assert len(chunk_ids) == len(set(chunk_ids)) == sum(r["made"] for r in rounds["rounds"])
        # what was kept is what the judge passed, and no failing pair got through
        curated = read_jsonl(next(run_dir.glob("*_curate/data.jsonl")))
        assert len(curated) == TARGET and all(r["rating"]["total"] >= 5 for r in curated)
        assert [r["messages"][-1]["content"] for r in rows] == [r["answer"] for r in curated]

        server.requests.clear()  # the same command again: every round is done
        assert _main(_args(db, server.base_url), tmp_path / "out", monkeypatch) == 0
        assert server.requests == [] and _exported(run_dir) == rows


def test_rounds_stopped_by_the_budget_resume_with_a_raised_cap(tmp_path, db, monkeypatch, capsys):
    with _server() as server:
        assert _main(_args(db, server.base_url), tmp_path / "clean", monkeypatch) == 0
        clean_requests = len(server.requests)
        clean_rows = _exported(_run_dir(tmp_path / "clean"))
        server.requests.clear()
        assert _main(_args(db, server.base_url, "budget.max_calls=70"), tmp_path / "out", monkeypatch) == 4
        assert "budget exhausted" in capsys.readouterr().err
        first = list(server.requests)
        run_dir = _run_dir(tmp_path / "out")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "budget_exhausted" and len(first) <= 70
        assert not list(run_dir.glob("*_export"))
        server.requests.clear()
        assert _main(_args(db, server.base_url, "budget.max_calls=1000"), tmp_path / "out", monkeypatch) == 0
        second = list(server.requests)
    assert not {messages_hash(r) for r in first} & {messages_hash(r) for r in second}
    assert len(first) + len(second) == clean_requests
    assert _exported(run_dir) == clean_rows and len(clean_rows) == TARGET


def _seeded(request: dict) -> str:
    """Like a real model with a seed: the same prompt with another seed gives another answer."""
    if request.get("max_tokens") == 1:
        return _responder(request)
    extra = {"role": "system", "content": f"seed {request.get('seed')}"}
    return default_responder({**request, "messages": [*request["messages"], extra]})


def test_used_up_inputs_are_taken_again_with_new_ids_and_seeds(tmp_path, monkeypatch, capsys):
    db = write_chunk_db(tmp_path / "few.lancedb", _passages(8))
    with FakeOpenAIServer(responder=_seeded, logprob_responder=_logprobs) as server:
        args = _args(db, server.base_url, "target_rows=12", "rounds.max_rounds=8")
        assert _main(args, tmp_path / "out", monkeypatch) == 0, capsys.readouterr().err
        requests = list(server.requests)
    run_dir = _run_dir(tmp_path / "out")
    assert len(_exported(run_dir)) == 12
    rounds = json.loads((run_dir / "metrics.json").read_text())["rounds"]
    assert rounds["target_reached"] and max(r["cycle"] for r in rounds["rounds"]) >= 1
    gen = read_jsonl(next(run_dir.glob("*_generate/data.jsonl")))
    ids = [g["id"] for g in gen]
    assert len(ids) == len(set(ids)) and any("~r1" in g["provenance"]["chunk_id"] for g in gen)
    assert len({(g["question"], g["answer"]) for g in gen}) == len(gen), "a later cycle repeated a pair"
    keys = [messages_hash(r) + str(r.get("seed")) for r in requests]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("override, message", [
    ("target_rows=0", "target_rows=0: must be a whole number >= 1"),
    ("rounds.from=nope", "rounds.from='nope': no such stage"),
    ("rounds.max_rounds=0", "rounds.max_rounds=0"),
])
def test_bad_rounds_input_is_one_line(tmp_path, db, monkeypatch, capsys, override, message):
    assert _main(["+recipe=qa", f"load.db={db}", "target_rows=5", override, "progress=false"],
                 tmp_path / "out", monkeypatch) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("synthrun: error:")]
    assert len(err) == 1 and message in err[0]


def test_next_size_follows_the_yield():
    assert next_size(20, 0, 0, 100) == 20
    assert next_size(20, 10, 20, 80) == 22  # 10 more at 0.5 per input, +10%
    assert next_size(20, 0, 20, 80) == 40  # nothing passed yet: twice as many
    assert next_size(20, 18, 20, 3) == 3 and next_size(20, 20, 30, 50) == 0
