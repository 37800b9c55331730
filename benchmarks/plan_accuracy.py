"""How close ``synthrun plan`` is to a real run: plan the qa recipe, run it on the loopback server, compare.

    python benchmarks/plan_accuracy.py [--pairs 4]

The loopback server (tests/llm/fake_openai_server.py) answers QA generation with a question and a
passage sentence, enrich with a passage sentence and a note, and the judge with one token; it
counts tokens as characters / 4. Prints, per LLM stage and in total, planned / real for calls,
prompt tokens and completion tokens (1.00 = exact), all measured in this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4, help="generate.n_pairs")
    args = parser.parse_args()
    from synthrun import cli
    from synthrun.plan import make_plan
    from synthrun.recipes import compose
    from tests.conftest import HDF5_PASSAGES, write_chunk_db
    from tests.llm.fake_openai_server import FakeOpenAIServer
    from tests.test_rounds import _passages

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer() as server:
        db = write_chunk_db(Path(tmp) / "db.lancedb", HDF5_PASSAGES + _passages(8))
        overrides = [f"load.db={db}", "load.max_chunks=null", f"generate.n_pairs={args.pairs}",
                     "curate.threshold=0", "provider=vllm", f"provider.api_base={server.base_url}",
                     "provider.model=hosted_vllm/fake", "provider.concurrency=4", "progress=false"]
        plan = {s.name: s for s in make_plan(compose("qa", overrides)).stages}
        os.environ["SYNTHRUN_OUTPUTS"] = str(Path(tmp) / "out")
        assert cli.main(["+recipe=qa", *overrides]) == 0
        (metrics_file,) = [p for p in (Path(tmp) / "out").rglob("metrics.json") if ".cache" not in p.parts]
        real = json.loads(metrics_file.read_text())
    print(f"{'stage':<10} {'calls plan/real':>18} {'prompt tok plan/real':>26} {'compl tok plan/real':>24}")
    tot = [0, 0, 0, 0, 0, 0]
    for s in real["stages"]:
        p = plan[s["name"]]
        if not s["llm_calls"] and not p.calls:
            continue
        vals = [p.calls, s["llm_calls"], p.prompt_tokens, s["tokens_in"], p.completion_tokens, s["tokens_out"]]
        tot = [a + b for a, b in zip(tot, vals, strict=True)]
        print(_row(s["name"], vals))
    print(_row("total", tot))


def _row(name: str, v: list[int]) -> str:
    def cell(a: int, b: int) -> str:
        return f"{a}/{b} ({a / b:.2f})" if b else f"{a}/{b}"

    return f"{name:<10} {cell(v[0], v[1]):>18} {cell(v[2], v[3]):>26} {cell(v[4], v[5]):>24}"


if __name__ == "__main__":
    main()
