"""Recipe-level speed of the embedded model next to the engine's own batch-8 figure, in one run.

Runs, each as a fresh ``synthrun`` process with a warm model cache and a fresh request cache:

1. ``+recipe=demo_db`` (no LLM) and the quick-start ``+recipe=qa`` (6 pairs): wall time per stage;
2. ``+recipe=qa generate.n_pairs=4`` without enrich/curate, to get 24 pairs, then
   ``+recipe=validate`` on those 24 pairs: wall time per stage;

and prints completion tokens/s per LLM stage next to the engine's batch-8 free-text figure
(8 requests x 64 tokens, as in benchmarks/local_model.py) measured in this same run with the same
provider settings, plus the machine load. Recipes send long prompts, so it also measures the engine's
prefill rate (8 long prompts admitted together) and prints the time the stages' work (prompt tokens
computed, completion tokens) takes at the engine's own two rates next to the time the stages took,
and the ceiling of the recipe-level figure: the stages spending nothing but their prefill and decode
passes (then with the model loads, ``load_seconds`` of the engine's counters, on top).

    python benchmarks/recipe_speed.py [provider overrides, e.g. provider.threads=1 provider.quantize=int8]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(args: list[str], out: Path) -> tuple[float, dict, dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "synthrun", *args, f"paths.output_root={out}", "progress=false"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"synthrun {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    runs = sorted(out.rglob("metrics.json"), key=lambda p: p.stat().st_mtime)
    log = runs[-1].parent / "run.log"
    stats: dict[str, str] = {}
    for line in (log.read_text(errors="replace").splitlines() if log.is_file() else []):
        if "local engine: " in line:  # the engine's counters, logged when it closes
            stats = dict(kv.rsplit(" ", 1) for kv in line.split("local engine: ", 1)[1].split(", "))
            steps = float(stats.get("decode_steps", 0)) or 1.0
            print(f"    engine ({args[0]}): {stats}; {float(stats.get('completion_tokens', 0)) / steps:.2f} "
                  "tokens per decode step", flush=True)
    return wall, json.loads(runs[-1].read_text()), stats


def engine_rates(overrides: list[str], max_tokens: int = 64) -> tuple[float, float]:
    """``(free-text tokens/s of 8 requests decoded together, prompt tokens/s prefilled)``.

    The first is the figure of benchmarks/local_model.py. The second prefills 8 distinct prompts of
    ~450 tokens admitted together (one token each), the kind of prompt recipes send.
    """
    from synthrun.llm.local_engine import LocalEngine

    settings = {k.split(".", 1)[1]: v for k, v in (o.split("=", 1) for o in overrides if o.startswith("provider."))}
    engine = LocalEngine.get(threads=int(settings["threads"]) if settings.get("threads", "null") != "null" else None,
                             max_batch=8, quantize=settings.get("quantize", "none").replace("null", "none"))
    msgs = [[{"role": "user", "content": f"Write a long story about dragon number {i}."}] for i in range(8)]
    engine.generate(msgs[0], max_tokens=4)  # warm-up (and applies the settings)
    start = time.perf_counter()
    results = engine.generate_many([dict(messages=m, max_tokens=max_tokens, temperature=0.7, seed=i)
                                    for i, m in enumerate(msgs)])
    decode = sum(r.completion_tokens for r in results) / (time.perf_counter() - start)
    before = dict(engine.stats)
    long = [[{"role": "user", "content": " ".join(f"Passage {i}, sentence {j}: chunked datasets of HDF5 files "
                                                   f"number {i * 100 + j}." for j in range(30))}] for i in range(8)]
    engine.generate_many([dict(messages=m, max_tokens=1, temperature=0.0) for m in long])
    prefill = (engine.stats["prefill_tokens"] - before["prefill_tokens"]) / (
        engine.stats["prefill_seconds"] - before["prefill_seconds"])
    engine.close()
    return decode, prefill


def stage_rows(label: str, metrics: dict, reference: float) -> list[tuple[str, float]]:
    rates = []
    for s in metrics["stages"]:
        if not s.get("llm_calls"):
            continue
        rate = s["tokens_out"] / s["wall_time_s"] if s["wall_time_s"] else 0.0
        rates.append((f"{label}/{s['name']}", rate))
        print(f"  {label:9s} {s['name']:9s} {s['llm_calls']:3d} calls {s['tokens_in']:6d} in {s['tokens_out']:5d} out "
              f"{s['wall_time_s']:7.1f} s  {rate:6.1f} tok/s  = {rate / reference:4.2f}x engine batch 8")
    return rates


def main() -> None:
    overrides = sys.argv[1:]
    from synthrun.llm.local_engine import default_gguf_path, load_model

    load_model(default_gguf_path())  # warm model cache (no-op when already there)
    print(f"load before: {os.getloadavg()} on {os.cpu_count()} cores; overrides: {overrides or 'none'}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run(["+recipe=demo_db"], out / "qs")
        qa_wall, qa, qa_engine = run(["+recipe=qa", *overrides], out / "qs")
        print(f"quick start QA: {qa_wall:6.1f} s wall (process), {qa['llm_calls']} calls, "
              f"{qa['tokens_in']} prompt / {qa['tokens_out']} completion tokens; load {os.getloadavg()}", flush=True)
        db = next((out / "qs").rglob("demo.lancedb"))
        _, gen, _ = run(["+recipe=qa", f"load.db={db}", "generate.n_pairs=4", "enrich.enabled=false", "curate.enabled=false",
                      "stages=[load,generate]", *overrides], out / "gen")
        pairs = next((out / "gen").rglob("02_generate/data.jsonl"))
        n_pairs = sum(1 for line in pairs.read_text().splitlines() if line.strip())
        val_wall, val, val_engine = run(["+recipe=validate", f"load.path='{pairs}'", *overrides], out / "val")
    reference, prefill_rate = engine_rates(overrides)
    print(f"engine batch 8 (free text, 64 tokens): {reference:6.1f} tok/s; prefill of 8 long prompts: "
          f"{prefill_rate:6.1f} prompt tok/s")
    rates = stage_rows("qa", qa, reference)
    rates += stage_rows("generate", gen, reference)
    print(f"validate {n_pairs} pairs: {val_wall:6.1f} s wall (process), {val['llm_calls']} calls, "
          f"{val['tokens_in']} prompt / {val['tokens_out']} completion tokens")
    rates += stage_rows("validate", val, reference)
    total_out = sum(m["tokens_out"] for m in (qa, val))
    total_s = sum(s["wall_time_s"] for m in (qa, val) for s in m["stages"] if s.get("llm_calls"))
    print(f"recipe-level (QA + validate LLM stages): {total_out / total_s:6.1f} tok/s = "
          f"{total_out / total_s / reference:4.2f}x engine batch 8")
    # Where those stages' time goes: the engine's decode passes, its prompt prefill, and the rest
    # (model load inside the first LLM stage, tokenizing, the client, the stage's own work).
    decode = sum(float(e.get("decode_seconds", 0)) for e in (qa_engine, val_engine))
    prefill = sum(float(e.get("prefill_seconds", 0)) for e in (qa_engine, val_engine))
    computed = sum(int(e.get("prefill_tokens", 0)) for e in (qa_engine, val_engine))
    print(f"  of their {total_s:.1f} s: decode passes {decode:.1f} s ({total_out / decode if decode else 0:.1f} tok/s "
          f"= {total_out / decode / reference if decode else 0:4.2f}x engine batch 8), prefill {prefill:.1f} s "
          f"({computed} prompt tokens computed), the rest {total_s - decode - prefill:.1f} s")
    # The same work at the engine's own two rates: what the stages would take if they lost nothing
    # to partly filled batches, to the tail of a stage, to start-up or to their own work.
    ideal = computed / prefill_rate + total_out / reference
    print(f"  the same work at the engine's own rates ({computed} prompt tokens at {prefill_rate:.0f} tok/s, "
          f"{total_out} completion tokens at {reference:.0f} tok/s): {ideal:.1f} s = {ideal / total_s:4.2f} of the "
          f"stages' {total_s:.1f} s")
    # The most the recipe-level figure can reach with this much prompt to compute: nothing but the
    # prefill (at the engine's rate) and the decode passes (at the rate they ran) in the stages' time,
    # then with the model load each process pays inside its first LLM stage as well.
    load = sum(float(e.get("load_seconds", 0)) for e in (qa_engine, val_engine))
    if decode and prefill_rate:
        bare = computed / prefill_rate + decode
        print(f"  ceiling with no other time: {total_out / bare / reference:4.2f}x engine batch 8 (prefill at "
              f"{prefill_rate:.0f} tok/s + the decode passes' {decode:.1f} s); with the model loads ({load:.1f} s): "
              f"{total_out / (bare + load) / reference:4.2f}x")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
