"""Scale of the selection stages: dedup and coverage selection on 10k / 30k / 100k records.

    python benchmarks/selection.py [--sizes 10000 30000 100000] [--model-sample 300] [--keep DIR] [--real 10000]

For each size it builds a synthetic instruction corpus (seeded, so every size is the same
kind of data) with planted near-duplicates and planted "siblings" (same opening, different
question: hard negatives that must NOT be merged), then runs, each in a fresh process:

* ``Dedup`` (exact + MinHash LSH + embedding cosine 0.92, keep the best ``rating.total``),
* ``Dedup`` text only (``dedup_text``: exact + MinHash LSH, no embeddings),
* ``SelectCoverage`` (keep 10 %, MiniBatchKMeans, centroid picks),
* ``MultiScore`` (heuristic scorer + embedding diversity, for reference),

and prints wall and CPU time (best of ``--repeat`` runs: the machine may be shared), peak memory (resident-set high-water mark of the worker, reset just
before the stage runs; "+" is the growth over the corpus already in memory), the growth
ratio between sizes next to the n log n ratio, and dedup precision / recall over planted
duplicate pairs.

EMBEDDINGS ARE SYNTHETIC: embedding 100k texts with MiniLM on 2 CPU cores takes long, so the
embedding cache (``synthrun.embeddings.EmbeddingCache``, the real on-disk cache the stages read)
is pre-filled with 384-d vectors built from topic centres plus noise: a planted duplicate
sits at cosine ~0.97 from its original, a sibling at ~0.8, unrelated questions of one topic
at ~0.3. The stages then run their normal cached path (no model is loaded). ``--model-sample``
times real MiniLM embedding of a few hundred texts. ``--real N`` instead embeds N REAL texts
(stdlib docstrings or short QA texts, 10 % planted near-duplicates) with each embedding route and
prints texts/s, agreement with torch and between routes, dedup precision/recall and coverage
overlap on those vectors: see benchmarks/selection_real.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

DIM = 384
TOPICS = 60
DUP_RATE = 0.10      # planted near-duplicates, as a fraction of the corpus
SIBLING_RATE = 0.05  # planted hard negatives
EMB_THRESHOLD = 0.92

_SYLLABLES = ("ka lo mi ren tas vo qui ber nal sho pe dra tum fi gor wex zi ul an es por lin dak "
              "mar sel tic vu ho bri ga nev os cra le").split()
_OPENERS = ["How do I", "Why does", "What is the best way to", "Explain how to", "Can you show how to",
            "What happens when I", "Describe how", "Is it possible to"]
_COMMON = ("the a of to in with for when and without using from into my our after before while each "
           "every only all").split()


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def _question(rng: random.Random, topic_words: list[str]) -> str:
    n = rng.randint(14, 34)
    words = [rng.choice(topic_words) if rng.random() < 0.6 else rng.choice(_COMMON) for _ in range(n)]
    cut = rng.randint(5, n - 4)
    return f"{rng.choice(_OPENERS)} {' '.join(words[:cut])}, {' '.join(words[cut:])}?"


def _edit(rng: random.Random, text: str, topic_words: list[str]) -> str:
    """A near-duplicate: 1-2 light edits (case, punctuation, a word swapped/dropped, a typo)."""
    words = text.split(" ")
    for _ in range(rng.randint(1, 2)):
        op = rng.choice(["case", "punct", "swap", "drop", "typo", "space"])
        i = rng.randrange(len(words))
        if op == "case":
            words[i] = words[i].upper()
        elif op == "punct":
            words[i] = words[i] + rng.choice([",", ";", " -", "!"])
        elif op == "swap":
            words[i] = rng.choice(topic_words)
        elif op == "drop" and len(words) > 8:
            del words[i]
        elif op == "typo" and len(words[i]) > 3:
            w = list(words[i])
            j = rng.randrange(len(w) - 1)
            w[j], w[j + 1] = w[j + 1], w[j]
            words[i] = "".join(w)
        else:
            words[i] = words[i] + " "
    return " ".join(words)


def build_corpus(n: int, seed: int = 0) -> tuple[list[dict], np.ndarray]:
    """Return ``n`` rows and their synthetic embeddings.

    Each row has ``id``, ``question``, ``answer``, ``rating.total``, ``topic`` and ``group``
    (rows of one planted duplicate group share it; everything else is its own group).
    """
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    vocab = _vocabulary(rng, 6000)
    topic_words = [rng.sample(vocab, 150) for _ in range(TOPICS)]
    centres = nrng.normal(size=(TOPICS, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    n_dup = int(n * DUP_RATE)
    n_sib = int(n * SIBLING_RATE)
    n_base = n - n_dup - n_sib
    rows: list[dict] = []
    vecs = np.empty((n, DIM), dtype=np.float32)

    def unit(v):
        return v / np.linalg.norm(v)

    for i in range(n_base):
        t = rng.randrange(TOPICS)
        q = _question(rng, topic_words[t])
        rows.append({"question": q, "topic": t, "group": i})
        vecs[i] = unit(0.55 * centres[t] + 0.83 * unit(nrng.normal(size=DIM)))
    originals = rng.sample(range(n_base), n_dup + n_sib)
    for k, src in enumerate(originals):
        i = len(rows)
        t = rows[src]["topic"]
        if k < n_dup:  # near-duplicate of src (several may copy one source)
            src = originals[rng.randrange(max(1, k))] if k and rng.random() < 0.2 else src
            rows.append({"question": _edit(rng, rows[src]["question"], topic_words[t]), "topic": t,
                         "group": rows[src]["group"]})
            vecs[i] = unit(vecs[src] + 0.24 * unit(nrng.normal(size=DIM)))  # cosine ~0.97
        else:  # sibling: the first half of src's words, then a different question of the same topic
            words = rows[src]["question"].split()
            keep = len(words) // 2
            tail = [rng.choice(topic_words[t]) if rng.random() < 0.6 else rng.choice(_COMMON)
                    for _ in range(len(words) - keep)]
            rows.append({"question": " ".join(words[:keep] + tail) + "?", "topic": t, "group": i})
            vecs[i] = unit(vecs[src] + 0.75 * unit(nrng.normal(size=DIM)))  # cosine ~0.8
    order = list(range(n))
    rng.shuffle(order)
    rows = [rows[j] for j in order]
    vecs = vecs[order]
    for i, row in enumerate(rows):
        row["id"] = f"q{i:06d}"
        row["answer"] = f"Answer {i}: first check the setup, then apply the fix, and finally verify it."
        row["rating"] = {"total": rng.randint(1, 10)}
    return rows, vecs


def prefill_cache(rows: list[dict], vecs: np.ndarray, cache_dir: Path) -> None:
    from synthrun.embeddings import Embedder, EmbeddingCache, text_key
    from synthrun.textfields import prompt_text

    cache = EmbeddingCache(cache_dir, Embedder().model_key)  # the key the stages' default route reads
    cache.put([text_key(prompt_text(r)) for r in rows], vecs)  # the exact text the stages embed
    cache.close()


def _rss_peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _rss_now_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pair_metrics(rows: list[dict], out: list) -> dict:
    """Precision / recall over duplicate pairs: planted groups vs (keeper + absorbed) groups."""
    def pairs_of(groups):
        s = set()
        for members in groups:
            members = sorted(members)
            s.update((a, b) for i, a in enumerate(members) for b in members[i + 1:])
        return s

    truth: dict[int, list[str]] = {}
    for r in rows:
        truth.setdefault(r["group"], []).append(r["id"])
    true_pairs = pairs_of(g for g in truth.values() if len(g) > 1)
    pred_pairs = pairs_of([r.id, *r.absorbed_ids] for r in out if getattr(r, "absorbed_ids", None))
    hit = len(true_pairs & pred_pairs)
    rating = {r["id"]: r["rating"]["total"] for r in rows}
    best_kept = sum(
        1 for r in out if getattr(r, "absorbed_ids", None)
        and rating[r.id] >= max(rating[a] for a in r.absorbed_ids)
    )
    groups = sum(1 for r in out if getattr(r, "absorbed_ids", None))
    return {
        "true_pairs": len(true_pairs), "pred_pairs": len(pred_pairs),
        "precision": hit / len(pred_pairs) if pred_pairs else 1.0,
        "recall": hit / len(true_pairs) if true_pairs else 1.0,
        "best_rated_kept": best_kept / groups if groups else 1.0,
    }


def _load_corpus(cache_dir: Path, n: int, seed: int) -> tuple[list[dict], np.ndarray]:
    """The corpus saved next to the cache by ``--prefill`` (built again if missing)."""
    path = cache_dir.parent / f"corpus-{n}-{seed}.pkl"
    if path.is_file():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    return build_corpus(n, seed)


def as_records(rows: list[dict]) -> list:
    """The corpus rows as records (the planted-duplicate ``group`` label left out)."""
    from synthrun.records import Record

    return [Record.model_validate({k: v for k, v in r.items() if k != "group"}) for r in rows]


def worker(stage: str, n: int, cache_dir: Path, seed: int, repeat: int = 1) -> dict:
    """Run one stage on the size-``n`` corpus in this (fresh) process; return measurements."""
    from synthrun.context import StageContext

    rows = _load_corpus(cache_dir, n, seed)[0]
    records = as_records(rows)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = StageContext(name=stage, run_id="bench", run_dir=Path(tmp), stage_dir=Path(tmp), show_progress=False)
        if stage == "dedup":
            from synthrun.stages.dedup import Dedup

            obj = Dedup(embedding_threshold=EMB_THRESHOLD, cache_dir=str(cache_dir))
        elif stage == "dedup_text":
            from synthrun.stages.dedup import Dedup

            obj = Dedup(cache_dir=str(cache_dir))  # exact + MinHash only: no embeddings
        elif stage == "coverage":
            from synthrun.stages.select_coverage import SelectCoverage

            obj = SelectCoverage(reduction_ratio=0.1, cache_dir=str(cache_dir))
        else:
            from synthrun.stages.multi_score import MultiScore

            obj = MultiScore(strategy="top_k", top_k=max(1, n // 10), cache_dir=str(cache_dir))
        # warm the imports the stage pulls in lazily, so they are not timed
        import scipy.sparse.csgraph  # noqa: F401
        import sklearn.cluster  # noqa: F401
        from datasketch import MinHash  # noqa: F401

        walls, cpus, peak, out = [], [], 0, None
        for _ in range(max(1, repeat)):  # the machine may be shared: keep the best of `repeat` runs
            out = None  # free the previous run's output before measuring
            ctx.summary.clear()
            ctx.failures.clear()
            base = _rss_now_kb()
            try:
                Path("/proc/self/clear_refs").write_text("5")  # reset the RSS high-water mark (Linux)
            except OSError:
                pass  # then the peak counts from the start of the worker
            t0, c0 = time.perf_counter(), time.process_time()
            out = obj.run(records, ctx)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            peak = max(peak, _rss_peak_kb())
        wall = min(walls)
        result = {"stage": stage, "n": n, "wall_s": wall, "walls": walls, "cpu_s": min(cpus), "peak_mb": peak / 1024, "base_mb": base / 1024,
                  "kept": len(out), "summary": ctx.summary}
        if stage.startswith("dedup"):
            result["quality"] = pair_metrics(rows, out)
        if stage == "coverage":
            result["topics_covered"] = len({r.topic for r in out}) / TOPICS
            result["ids"] = [r.id for r in out]
        if ctx.summary.get("embeddings", {}).get("embedded"):
            result["warning"] = "some texts were not in the cache and were embedded by the model"
        return result


def model_sample(k: int, seed: int) -> dict:
    """Time real MiniLM embedding (no cache) of ``k`` corpus texts."""
    from synthrun.embeddings import Embedder

    rows, _ = build_corpus(max(k * 2, 100), seed)
    emb = Embedder()
    t0 = time.perf_counter()
    emb.embed(["warm up"])
    load = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb.embed([r["question"] for r in rows[:k]])
    wall = time.perf_counter() - t0
    return {"k": k, "load_s": load, "wall_s": wall, "per_s": k / wall, "backend": emb.backend}


def _spawn(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:  # noqa: C901 - argument handling and one report section per stage
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    parser.add_argument("--stages", nargs="+", default=["dedup", "dedup_text", "coverage", "multi_score"],
                        choices=["dedup", "dedup_text", "coverage", "multi_score"])
    parser.add_argument("--model-sample", type=int, default=300, help="texts for the real MiniLM timing (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per stage and size; the best time is shown")
    parser.add_argument("--keep", type=Path, help="keep the embedding caches in this folder")
    parser.add_argument("--worker", nargs=3, metavar=("STAGE", "N", "CACHE"), help=argparse.SUPPRESS)
    parser.add_argument("--prefill", nargs=2, metavar=("N", "CACHE"), help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--real", type=int, default=0,
                        help="also embed this many REAL texts (stdlib docstrings) and run dedup on those vectors")
    parser.add_argument("--torch-sample", type=int, default=200, help="real texts also embedded by torch (agreement)")
    parser.add_argument("--corpus", choices=["docstrings", "qa"], default="docstrings", help="the --real texts")
    parser.add_argument("--routes", nargs="+", default=["onnx", "onnx-int8"], help="--real: embedding routes timed")
    parser.add_argument("--batch-size", type=int, default=64, help="--real: texts per forward pass")
    args = parser.parse_args()
    if args.real:
        from selection_real import run_real  # the real-embedding report (benchmarks/selection_real.py)

        run_real(args)
    elif not _subcommand(args):
        run_sizes(args)


def _subcommand(args: argparse.Namespace) -> bool:
    """Runs a worker-process job (``--worker``, ``--prefill``, ``--sample``); False when none was asked for."""
    if args.worker:
        stage, n, cache = args.worker
        print(json.dumps(worker(stage, int(n), Path(cache), args.seed, args.repeat), default=str))
        return True
    if args.prefill:
        n, cache = args.prefill
        t0 = time.perf_counter()
        rows, vecs = build_corpus(int(n), args.seed)
        with open(Path(cache).parent / f"corpus-{n}-{args.seed}.pkl", "wb") as fh:
            pickle.dump((rows, vecs), fh)
        t1 = time.perf_counter()
        prefill_cache(rows, vecs, Path(cache))
        print(json.dumps({"build_s": t1 - t0, "prefill_s": time.perf_counter() - t1}))
        return True
    if args.sample:
        print(json.dumps(model_sample(args.sample, args.seed)))
        return True
    return False


def run_sizes(args: argparse.Namespace) -> None:
    """The synthetic-embedding scale runs over ``--sizes``."""
    root = args.keep or Path(tempfile.mkdtemp(prefix="synthrun-bench-"))
    print(f"selection benchmark: {os.cpu_count()} CPUs, sizes {args.sizes}, seed {args.seed}")
    print(f"corpus: synthetic questions over {TOPICS} topics, {DUP_RATE:.0%} planted near-duplicates "
          f"(1-2 light edits), {SIBLING_RATE:.0%} planted siblings (hard negatives: the first half of "
          "another question, then a different second half)")
    print("EMBEDDINGS: SYNTHETIC 384-d vectors pre-filled into the real on-disk embedding cache "
          "(duplicate ~0.97 cosine to its original, sibling ~0.8); stages read them through the cached path\n")
    results: dict[tuple[str, int], dict] = {}
    for n in args.sizes:
        cache = root / f"emb-{n}"
        info = _spawn(["--prefill", str(n), str(cache), "--seed", str(args.seed)])
        print(f"n={n:>7}: corpus built in {info['build_s']:.1f} s, cache pre-filled in {info['prefill_s']:.1f} s")
        for stage in args.stages:
            r = _spawn(["--worker", stage, str(n), str(cache), "--seed", str(args.seed), "--repeat", str(args.repeat)])
            results[(stage, n)] = r
            line = (f"  {stage:<11} {r['wall_s']:7.2f} s wall  {r['cpu_s']:7.2f} s CPU   peak RSS {r['peak_mb']:7.0f} MB "
                    f"(+{r['peak_mb'] - r['base_mb']:.0f} MB over the loaded corpus)   kept {r['kept']}")
            if "quality" in r:
                q = r["quality"]
                s = r["summary"]
                line += (f"\n              precision {q['precision']:.3f}  recall {q['recall']:.3f}  "
                         f"({q['pred_pairs']} predicted / {q['true_pairs']} planted pairs; best-rated kept in "
                         f"{q['best_rated_kept']:.0%} of groups; pairs by pass {s['pairs']}; "
                         f"LSH b={s['minhash']['bands']} r={s['minhash']['rows']}, "
                         f"{s['minhash']['candidates']} candidates; seconds by pass {s['timings']})")
            if "topics_covered" in r:
                s = r["summary"]
                line += (f"\n              {s['clusters']} clusters (sizes {s['cluster_size']}), "
                         f"{r['topics_covered']:.0%} of the {TOPICS} planted topics in the selection")
            if "warning" in r:
                line += f"\n              WARNING: {r['warning']}"
            print(line, flush=True)

    sizes = sorted(args.sizes)
    if len(sizes) > 1:
        print("\ngrowth (ratio of CPU time between consecutive sizes, wall in brackets; n log n ratio for comparison;"
              "\n CPU time is the stable measure when other processes share the cores):")
        for stage in args.stages:
            parts = []
            for a, b in zip(sizes, sizes[1:], strict=False):
                ta, tb = results[(stage, a)]["cpu_s"], results[(stage, b)]["cpu_s"]
                wa, wb = results[(stage, a)]["wall_s"], results[(stage, b)]["wall_s"]
                nlogn = (b * math.log(b)) / (a * math.log(a))
                parts.append(f"{a // 1000}k->{b // 1000}k x{tb / ta:.2f} [x{wb / wa:.2f}] (n log n x{nlogn:.2f}"
                             f"{', ok' if tb / ta <= nlogn * 1.1 else ', ABOVE'})")
            print(f"  {stage:<11} " + "; ".join(parts))
    big = max(sizes)
    goals = []
    for stage in ("dedup", "coverage"):
        if (stage, big) in results:
            t = results[(stage, big)]["wall_s"]
            goals.append(f"{stage} {big // 1000}k {t:.1f} s {'<' if t < 60 else '>='} 60 s")
    if ("dedup", big) in results:
        q = results[("dedup", big)]["quality"]
        ok = q["precision"] >= 0.95 and q["recall"] >= 0.95
        goals.append(f"dedup P/R {q['precision']:.3f}/{q['recall']:.3f} {'meets' if ok else 'misses'} >= 0.95/0.95")
    if goals:
        print("\ngoals: " + "; ".join(goals))

    if args.model_sample:
        m = _spawn(["--sample", str(args.model_sample), "--seed", str(args.seed)])
        print(f"\nreal MiniLM ({m['backend']}, uncached) on {m['k']} texts: {m['wall_s']:.1f} s = {m['per_s']:.0f} texts/s "
              f"(model load {m['load_s']:.1f} s) -> about {100_000 / m['per_s'] / 60:.0f} min to embed 100k "
              f"on this machine the first time; later runs read the cache")
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
