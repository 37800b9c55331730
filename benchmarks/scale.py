"""Scale of a synthrun run: memory over a million records, and LLM throughput through shards and on Ray.

    python benchmarks/scale.py [--records 100000,1000000] [--calls 50000] [--latency 0.02]
                               [--concurrency 32] [--shard-size 1000] [--skip a,b,c] [--gates G1,G2]

(a) ``records`` QA rows (10% exact repeats) through load -> filter (per-record gates, no LLM) ->
    dedup (exact + MinHash) -> export, each size in a child ``synthrun`` process: its peak RSS
    (``wait4``), wall time and rows kept. Goal: < 2 GB at 1M, growing less than the input.
    ``--gates`` picks the filter's gates (fewer: a cheaper per-record stage, same memory path;
    ``none``: no filter stage).
(b) ``calls`` LLM ratings (load -> curate) against the loopback OpenAI-compatible server
    (tests/llm/fake_openai_server.py, ``latency`` s per request) through shards of ``shard-size``,
    and the same stage unsharded (shard_size above the row count: one client over every request),
    in this run, each with a fresh cache, ``repeats`` times alternating (best of each counts).
    Goal: sharded >= 0.9x the unsharded throughput.
(c) the (b) workload with ``executor=ray`` on a private local Ray with 2 CPUs (2 workers, each
    with ``concurrency`` requests in flight) vs the local executor.
Prints one table; the closing lines give the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.llm.fake_openai_server import FakeOpenAIServerProcess  # noqa: E402

RECIPE_A = """# @package _global_
recipe_name: scale_a
stages: [load, {filter_stage}dedup, export]
load:
  _target_: synthrun.stages.load_records.LoadRecords
  path: {data}
{filter_block}dedup:
  _target_: synthrun.stages.dedup.Dedup
  text_field: [question, answer]
  num_perm: {num_perm}
export:
  _target_: synthrun.stages.export.Export
  format: chatml
"""

RECIPE_B = """# @package _global_
recipe_name: scale_b
stages: [load, curate]
load:
  _target_: synthrun.stages.load_records.LoadRecords
  path: {data}
curate:
  _target_: synthrun.stages.curate.Curate
  threshold: 0
  max_tokens: 64
"""

SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "vi", "ro", "de", "pa", "chu", "fen", "gor", "hix", "jal", "mur"]


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))


def write_rows(path: Path, n: int, seed: int = 0, repeat_every: int = 10) -> None:
    """``n`` QA rows of random made-up words; every ``repeat_every``-th repeats an earlier row (new id)."""
    rng = random.Random(seed)
    kept: list[tuple[str, str]] = []
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            if repeat_every and i and i % repeat_every == 0:
                q, a = kept[rng.randrange(len(kept))]
            else:
                q = f"How does the {_word(rng)} {_word(rng)} change the {_word(rng)} of {_word(rng)} {i}?"
                a = f"It sets the {_word(rng)} {_word(rng)} {_word(rng)} to {i % 977} for every {_word(rng)}."
                if len(kept) < 100000:
                    kept.append((q, a))
            fh.write(json.dumps({"id": f"r{i:07d}", "question": q, "answer": a,
                                 "provenance": {"source_text": f"{a} See {_word(rng)}."}}) + "\n")


def synthrun(args: list[str], env: dict[str, str]) -> tuple[int, float, int]:
    """Run ``synthrun ARGS`` in a child process; return (exit code, wall seconds, peak RSS bytes)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "synthrun", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(err[-3000:], file=sys.stderr)
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss * 1024


def metrics(out: Path) -> dict:
    (path,) = [p for p in out.rglob("metrics.json") if ".cache" not in p.parts]
    return json.loads(path.read_text())


def stage(m: dict, name: str) -> dict:
    return next(s for s in m["stages"] if s["name"] == name)


FILTER = """filter:
  _target_: synthrun.stages.filter.Filter
  use_embeddings: false
  gates: [{gates}]
"""


def _recipe_a(data: Path, num_perm: int, gates: str) -> str:
    """The part (a) recipe; ``gates`` ``none``: no filter stage (load -> dedup -> export)."""
    if gates.strip() == "none":
        return RECIPE_A.format(data=data, num_perm=num_perm, filter_stage="", filter_block="")
    return RECIPE_A.format(data=data, num_perm=num_perm, filter_stage="filter, ",
                           filter_block=FILTER.format(gates=gates))


def part_a(sizes: list[int], tmp: Path, num_perm: int, shard_size: int, gates: str) -> list[tuple[str, ...]]:
    rows = []
    recipes = tmp / "recipes_a"
    recipes.mkdir()
    for n in sizes:
        data = tmp / f"rows_{n}.jsonl"
        write_rows(data, n)
        (recipes / "scale_a.yaml").write_text(_recipe_a(data, num_perm, gates))
        out = tmp / f"a_{n}"
        env = {**os.environ, "SYNTHRUN_RECIPE_PATH": str(recipes), "SYNTHRUN_OUTPUTS": str(out)}
        code, wall, rss = synthrun(["+recipe=scale_a", f"shard_size={shard_size}", "progress=false"], env)
        m = metrics(out) if code == 0 else {"stages": []}
        kept = m.get("rows_final")
        times = " ".join(f"{s['name']} {s['wall_time_s']:.0f}s" for s in m["stages"])
        chain = "load->dedup->export" if gates.strip() == "none" else f"load->filter({gates})->dedup->export"
        rows.append((f"(a) {n:,} records: {chain}", f"exit {code}", f"{wall:.1f} s",
                     f"peak RSS {rss / 2**30:.2f} GB", f"kept {kept:,}" if kept is not None else "-",
                     times or "-", f"input {data.stat().st_size / 2**20:.0f} MB"))
        print(" | ".join(rows[-1]), flush=True)
    return rows


def run_llm(tag: str, tmp: Path, recipes: Path, url: str, extra: list[str], concurrency: int) -> tuple[float, dict]:
    out = tmp / f"b_{tag}"
    env = {**os.environ, "SYNTHRUN_RECIPE_PATH": str(recipes), "SYNTHRUN_OUTPUTS": str(out)}
    args = ["+recipe=scale_b", "provider=vllm", f"provider.api_base={url}", "provider.model=hosted_vllm/fake",
            f"provider.concurrency={concurrency}", "progress=false", *extra]
    code, wall, rss = synthrun(args, env)
    if code != 0:
        raise SystemExit(f"LLM run {tag} failed (exit {code})")
    s = stage(metrics(out), "curate")
    return s["llm_calls"] / s["wall_time_s"], {"wall": s["wall_time_s"], "calls": s["llm_calls"],
                                                "hits": s["cache_hits"], "rss": rss}


def part_bc(calls: int, latency: float, concurrency: int, shard_size: int, tmp: Path,
            skip: set[str], repeats: int) -> list[tuple[str, ...]]:
    data = tmp / "calls.jsonl"
    write_rows(data, calls, seed=1, repeat_every=0)  # every request distinct
    recipes = tmp / "recipes_b"
    recipes.mkdir()
    (recipes / "scale_b.yaml").write_text(RECIPE_B.format(data=data))
    rows: list[tuple[str, ...]] = []
    rates: dict[str, float] = {}
    arms = [] if "b" in skip else [("unsharded", [f"shard_size={calls + 1}"]), ("sharded", [f"shard_size={shard_size}"])]
    if "c" not in skip:
        arms.append(("ray", [f"shard_size={shard_size}", "executor=ray", "executor.num_cpus=2"]))
    with FakeOpenAIServerProcess(latency=latency) as server:
        for rep in range(repeats):  # arms alternate, so a change in machine load hits all of them
            for tag, extra in arms:
                before = server.stats()["requests"]
                rate, info = run_llm(f"{tag}{rep}", tmp, recipes, server.base_url, extra, concurrency)
                sent = server.stats()["requests"] - before
                rates[tag] = max(rates.get(tag, 0.0), rate)
                rows.append((f"({'c' if tag == 'ray' else 'b'}) {info['calls']:,} LLM calls, {tag} #{rep + 1}",
                             f"sent {sent:,}", f"{info['wall']:.1f} s", f"{rate:,.0f} calls/s",
                             f"cache hits {info['hits']}", f"peak RSS {info['rss'] / 2**30:.2f} GB"))
                print(" | ".join(rows[-1]), flush=True)
    if "unsharded" in rates and "sharded" in rates:
        rows.append((f"(b) sharded / unsharded throughput (best of {repeats})",
                     f"{rates['sharded'] / rates['unsharded']:.3f}x", "goal >= 0.9x"))
    if "ray" in rates and "sharded" in rates:
        rows.append((f"(c) ray (2 workers) / local sharded throughput (best of {repeats})",
                     f"{rates['ray'] / rates['sharded']:.3f}x", ""))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default="100000,1000000", help="sizes of part (a), comma-separated")
    ap.add_argument("--calls", type=int, default=50000)
    ap.add_argument("--latency", type=float, default=0.02, help="seconds the loopback server takes per request")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--num-perm", type=int, default=128, help="MinHash permutations of the dedup stage")
    ap.add_argument("--gates", default="interrogative, length, vague, echo, meta",
                    help="filter gates of part (a) (comma-separated; fewer: a cheaper per-record stage; "
                         "none: no filter stage)")
    ap.add_argument("--skip", default="", help="parts to skip, e.g. a or b,c")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each LLM arm, alternating (best counts)")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    load = os.getloadavg()
    print(f"# scale benchmark: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="synthrun-scale-") as tmp:
        if "a" not in skip:
            sizes = [int(s) for s in args.records.split(",") if s.strip()]
            rows += part_a(sizes, Path(tmp), args.num_perm, args.shard_size, args.gates)
        if not {"b", "c"} <= skip:
            rows += part_bc(args.calls, args.latency, args.concurrency, args.shard_size, Path(tmp), skip,
                            args.repeats)
    print("\n| measurement | " + " | ".join(["value"] * (max(map(len, rows)) - 1)) + " |")
    print("|---" * max(map(len, rows)) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
