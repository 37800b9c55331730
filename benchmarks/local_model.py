"""Benchmark of the embedded SmolLM2-135M engine (synthrun.llm.local_engine).

Prints: first load (GGUF de-quantization) and cached load times, cold start of a fresh process,
schema compile time and per-token masking overhead, decode throughput single and at batch 8 for
free text and schema-constrained JSON, and the validity rate of structured answers.

    python benchmarks/local_model.py            # about 3-4 minutes on 2 CPU cores
    python benchmarks/local_model.py --quick    # smaller counts
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PASSAGES = [
    "HDF5 groups are folder-like containers that hold datasets and other groups.",
    "Chunked storage splits a dataset into regular blocks stored separately in the file.",
    "Attributes are small named pieces of data attached to groups and datasets.",
    "A LanceDB table stores vectors next to the rows they describe.",
    "The Eiffel Tower was built in 1889 for the World's Fair in Paris.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "Python's asyncio runs coroutines on a single-threaded event loop.",
    "A B-tree keeps keys sorted and allows searches in logarithmic time.",
]


class QAPair(BaseModel):
    question: str = Field(max_length=200)
    answer: str
    tags: list[str] = []
    difficulty: int = Field(ge=1, le=5)


class Rating(BaseModel):
    clarity: int = Field(ge=0, le=3)
    accuracy: int = Field(ge=0, le=3)
    reason: str


def qa_msgs(text: str) -> list[dict]:
    return [{"role": "system", "content": "You write quiz questions. Answer in JSON."},
            {"role": "user", "content": f"Write one question and its answer about: {text}"}]


def rate_msgs(text: str) -> list[dict]:
    return [{"role": "user", "content": f"Rate the clarity and accuracy (0-3) of this statement: {text}"}]


def story_msgs(i: int) -> list[dict]:
    return [{"role": "user", "content": f"Write a long story about dragon number {i}."}]


def throughput(engine, requests: list[dict]) -> tuple[float, int, float]:
    start = time.perf_counter()
    results = engine.generate_many(requests)
    elapsed = time.perf_counter() - start
    tokens = sum(r.completion_tokens for r in results)
    return tokens / elapsed, tokens, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--valid-n", type=int, default=40, help="structured calls for the validity rate")
    args = ap.parse_args()
    n_valid = 16 if args.quick else args.valid_n
    mt = args.max_tokens

    t = time.perf_counter()
    import torch  # noqa: F401
    import transformers  # noqa: F401

    print(f"import torch+transformers       {time.perf_counter() - t:6.2f} s")

    from synthrun.llm import local_engine
    from synthrun.llm.local_engine import LocalEngine, default_gguf_path, load_model, load_weights

    gguf = default_gguf_path()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SYNTHRUN_MODEL_CACHE"] = tmp
        _, _, first = load_model(gguf)
        _, _, cached = load_model(gguf)
        direct = load_weights(gguf).info
        print(f"first load (GGUF de-quantize)   {first['seconds']:6.2f} s  (+ cache write)")
        print(f"cached load (transformers model) {cached['seconds']:5.2f} s")
        print(f"cached load (engine: tensors)   {direct['seconds']:6.2f} s")
        cold = subprocess.run(
            [sys.executable, "-c",
             "import time; t=time.perf_counter();"
             "from synthrun.llm.local_engine import LocalEngine; e=LocalEngine.get();"
             "e.generate([{'role':'user','content':'Hi'}], max_tokens=1);"
             "print(time.perf_counter()-t)"],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
        print(f"cold start to 1st token (cached) {float(cold.stdout.strip().splitlines()[-1]):5.2f} s  (new process)")
    del os.environ["SYNTHRUN_MODEL_CACHE"]

    engine = LocalEngine.get()
    print(f"engine load ({engine.load_info['source']})           {engine.load_info['seconds']:6.2f} s"
          f"  (computes in {engine.load_info['dtype']})")

    # Schema compile and per-token masking overhead.
    from synthrun.llm.constrain import ConstraintCache

    fresh = ConstraintCache(engine.constraints.vocabulary, engine.eos_id)
    for model in (QAPair, Rating):
        t = time.perf_counter()
        compiled = fresh.get(model.model_json_schema())
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        fresh.get(model.model_json_schema())
        print(f"compile {model.__name__:8s} schema         {first_s:6.2f} s  (cached {1e3 * (time.perf_counter() - t):.2f} ms,"
              f" {len(compiled.dist)} states, >= {compiled.min_tokens} tokens)")
    compiled = engine.constraints.get(QAPair.model_json_schema())
    states = list(compiled._tokens)
    logits = torch.randn(int(engine.weights.config["vocab_size"]))
    t = time.perf_counter()
    reps = 0
    for state in states * 20:
        allowed = compiled.allowed(state, 1000)
        _ = logits[allowed]
        reps += 1
    print(f"mask overhead per token         {1e3 * (time.perf_counter() - t) / reps:6.3f} ms (mean over states)")

    # Throughput.
    engine.generate(story_msgs(0), max_tokens=4)  # warm-up
    n8 = 8
    rows = [
        ("free text", lambda i: dict(messages=story_msgs(i), max_tokens=mt, temperature=0.7, seed=i)),
        ("JSON (QA)", lambda i: dict(messages=qa_msgs(PASSAGES[i % 8]), json_schema=QAPair.model_json_schema(),
                                     max_tokens=mt, temperature=0.7, seed=i)),
    ]
    for name, make in rows:
        single = [throughput(engine, [make(i)]) for i in range(1 if args.quick else 2)]
        tps1 = sum(s[1] for s in single) / sum(s[2] for s in single)
        tps8, tokens8, el8 = throughput(engine, [make(i) for i in range(n8)])
        stream = [make(i) for i in range(3 * n8)]  # more requests than slots: continuous batching
        tpsc, tokensc, elc = throughput(engine, stream)
        print(f"{name:10s} tok/s: single {tps1:5.1f} | batch 8 {tps8:5.1f} ({tokens8} tok in {el8:.1f} s)"
              f" | 24 requests, 8 slots {tpsc:5.1f}")

    # Variants in fresh processes: compute dtype, float32 matrix products through oneDNN (packed
    # weights, the default) or torch's BLAS (MKL), and torch thread count (on a CPU shared with other
    # busy processes one thread can beat two).
    probe = (
        "import time; from synthrun.llm.local_engine import LocalEngine; e=LocalEngine.get();"
        "reqs=[dict(messages=[{'role':'user','content':f'Write a long story about dragon number {i}.'}],"
        f"max_tokens={mt}, temperature=0.7, seed=i) for i in range(8)];"
        "e.generate_many(reqs[:1]); t=time.perf_counter(); r=e.generate_many(reqs[:1]);"
        "one=r[0].completion_tokens/(time.perf_counter()-t);"
        "t=time.perf_counter(); rs=e.generate_many(reqs);"
        "print(one, sum(r.completion_tokens for r in rs)/(time.perf_counter()-t))"
    )
    variants = [("SYNTHRUN_LOCAL_DTYPE", "float32"), ("SYNTHRUN_LOCAL_DTYPE", "bfloat16"),
                ("SYNTHRUN_LOCAL_GEMM", "blas"), ("SYNTHRUN_LOCAL_GEMM", "onednn"),
                ("SYNTHRUN_LOCAL_THREADS", "1"), ("SYNTHRUN_LOCAL_THREADS", "2")]
    for key, value in variants:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), key: value}
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
        one, eight = (float(x) for x in out.stdout.split()[-2:]) if out.returncode == 0 else (float("nan"),) * 2
        print(f"free text {key}={value:8s}: single {one:5.1f} tok/s | batch 8 {eight:5.1f} tok/s")

    # Validity over structured calls (high temperature on purpose).
    ok = closed = 0
    reqs = []
    for i in range(n_valid):
        if i % 2 == 0:
            reqs.append((QAPair, dict(messages=qa_msgs(PASSAGES[i % 8]), json_schema=QAPair.model_json_schema(),
                                      max_tokens=mt, temperature=1.0, seed=100 + i)))
        else:
            reqs.append((Rating, dict(messages=rate_msgs(PASSAGES[i % 8]), json_schema=Rating.model_json_schema(),
                                      max_tokens=mt, temperature=1.0, seed=100 + i)))
    t = time.perf_counter()
    results = engine.generate_many([kw for _, kw in reqs])
    elapsed = time.perf_counter() - t
    examples = []
    for (model, _), r in zip(reqs, results, strict=True):
        try:
            model.model_validate_json(r.text)
            ok += 1
        except ValidationError:
            examples.append(r.text)
        closed += r.closed_early
    print(f"validity: {ok}/{n_valid} = {100 * ok / n_valid:.1f}% valid against schema "
          f"({closed} closed early by the budget; {elapsed:.1f} s, temperature 1.0, max_tokens {mt})")
    for text in examples[:3]:
        print("  invalid:", text[:200])
    print(f"engine stats: {engine.stats}")
    print(f"load average: {os.getloadavg()} on {os.cpu_count()} cores")
    print(f"sample QA answer: {results[0].text[:200]}")
    _ = local_engine  # keep the import for interactive use


if __name__ == "__main__":
    main()
