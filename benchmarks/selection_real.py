"""``benchmarks/selection.py --real N``: real texts, real embeddings, per embedding route.

    python benchmarks/selection.py --real 10000 [--corpus docstrings|qa] [--routes onnx onnx-int8]
        [--torch-sample 200] [--batch-size 64]

Two corpora of REAL text, each with 10 % planted near-duplicates (one word dropped or upper-cased):

* ``docstrings``: Python standard-library docstrings (up to 400 characters, ~50 tokens on average);
* ``qa``: the short question + answer texts synthrun dedups, made from the 321 labelled QA rows of
  tests/data/judge/qa_dev.jsonl and the 252 tool-call instructions of tool_dev.jsonl: the question,
  the answer and the pair are each a text, and to reach N texts the list is cycled with one word of
  each copy dropped, swapped with its neighbour or upper-cased (so every text is distinct; the
  token lengths stay those of the real rows). The copies of one real text count as its duplicates
  in dedup precision / recall.

It prints the token-length distribution (mean / median / p90, share truncated at the model's
max_seq_length), then for each route texts/s (wall and per CPU-second, so a shared machine can
be read), the cosine agreement with the torch route on ``--torch-sample`` texts and with the first
route on all texts, the duplicate pairs at the dedup threshold (identical or not), dedup precision /
recall on the planted pairs and the rows ``SelectCoverage`` keeps (overlap with the first route, and
the coverage score of each route's rows on the first route's vectors: mean cosine of every text to its
closest kept row; the first route is also clustered with another seed, the stage's own variation).
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from selection import DUP_RATE, EMB_THRESHOLD, _spawn, as_records, prefill_cache

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "judge"


def docstring_texts(n: int) -> list[str]:
    """Up to ``n`` distinct standard-library docstrings (whitespace folded, first 400 characters)."""
    import ast
    import sysconfig

    texts: list[str] = []
    seen: set[str] = set()
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(errors="replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                doc = " ".join((ast.get_docstring(node) or "").split())[:400]
                if len(doc) >= 40 and doc not in seen:
                    seen.add(doc)
                    texts.append(doc)
        if len(texts) >= n:
            break
    return texts[:n]


def _vary(text: str, rng: random.Random) -> str:
    words = text.split()
    if len(words) < 2:
        return text + " ?"
    k = rng.randrange(len(words) - 1)
    how = rng.randrange(3)
    if how == 0:
        words = words[:k] + words[k + 1:]
    elif how == 1:
        words[k], words[k + 1] = words[k + 1], words[k]
    else:
        words[k] = words[k].upper()
    return " ".join(words)


def qa_texts(n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """``n`` distinct short QA texts (see the module docstring) and the real text each was made from."""
    base: list[str] = []
    for line in (DATA / "qa_dev.jsonl").read_text().splitlines():
        row = json.loads(line)
        q, a = " ".join(row["question"].split()), " ".join(row["answer"].split())
        base += [q, a, f"{q}\n\n{a}"]
    for line in (DATA / "tool_dev.jsonl").read_text().splitlines():
        base.append(" ".join(json.loads(line)["instruction"].split()))
    rng = random.Random(seed)
    texts: list[str] = []
    seen: set[str] = set()
    for t in base:
        if t and t not in seen:
            seen.add(t)
            texts.append(t)
    origin = list(range(len(texts)))
    while len(texts) < n:
        src = rng.randrange(len(texts))
        t = _vary(texts[src], rng)
        if t not in seen:
            seen.add(t)
            texts.append(t)
            origin.append(origin[src])
    return texts[:n], origin[:n]


def real_corpus(n: int, seed: int = 0, corpus: str = "docstrings") -> list[dict]:
    """``n`` rows of real text of ``corpus``, 10 % planted near-duplicates (one word dropped or upper-cased)."""
    if corpus == "docstrings":
        texts = docstring_texts(n)
        origin = list(range(len(texts)))
    else:  # the cycled copies of one real text are near-duplicates of it: one group
        texts, origin = qa_texts(n, seed)
    rng = random.Random(seed)
    n_dup = int(n * DUP_RATE)
    base = texts[: n - n_dup]
    rows = [{"question": t, "group": origin[i]} for i, t in enumerate(base)]
    seen = set(base)
    for src in rng.sample(range(len(base)), min(n_dup, len(base))):
        words = base[src].split()
        k = rng.randrange(len(words))
        edited = words[:k] + words[k + 1:] if rng.random() < 0.5 else words[:k] + [words[k].upper()] + words[k + 1:]
        text = " ".join(edited)
        if text not in seen:  # an edit that gives back an existing text would plant an exact duplicate
            seen.add(text)
            rows.append({"question": text, "group": origin[src]})
    rng.shuffle(rows)
    for i, row in enumerate(rows):
        row["id"] = f"r{i:06d}"
        row["answer"] = ""
        row["rating"] = {"total": rng.randint(1, 10)}
        row["topic"] = 0
    return rows


def token_lengths(texts: list[str]) -> dict:
    """Token-length distribution of ``texts`` under the packaged model's tokenizer (no truncation)."""
    from tokenizers import Tokenizer

    from synthrun.embeddings import DEFAULT_MODEL, resolve_model

    folder = Path(resolve_model(DEFAULT_MODEL)[0])
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    max_len = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    lengths = np.array([len(e.ids) for e in tok.encode_batch(texts)])
    return {"mean": float(lengths.mean()), "median": float(np.median(lengths)), "p90": float(np.percentile(lengths, 90)),
            "max": int(lengths.max()), "max_seq_length": max_len, "truncated": float((lengths > max_len).mean())}


def _pairs(vecs: np.ndarray, block: int = 2048) -> set[tuple[int, int]]:
    """Index pairs (i < j) at cosine >= the dedup threshold, computed in row blocks."""
    out: set[tuple[int, int]] = set()
    for start in range(0, len(vecs), block):
        sims = vecs[start:start + block] @ vecs.T
        for i, j in zip(*np.nonzero(sims >= EMB_THRESHOLD), strict=True):
            if start + i < j:
                out.add((int(start + i), int(j)))
    return out


def embed_route(route: str, texts: list[str], batch_size: int) -> dict:
    """Embeds ``texts`` (no cache) with ``route``; wall and CPU time, after a warm-up."""
    from synthrun.embeddings import Embedder

    emb = Embedder(backend=route, batch_size=batch_size)
    emb.embed(["warm up"])
    c0, t0 = time.process_time(), time.perf_counter()
    vecs = emb.embed(texts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"route": emb.backend, "wall_s": wall, "cpu_s": cpu, "per_s": len(texts) / wall,
            "per_cpu_s": len(texts) / cpu, "vecs": vecs}


def _stages(rows: list[dict], vecs: np.ndarray, root: Path, name: str, seed: int) -> dict:
    """Dedup and coverage selection on ``vecs`` (pre-filled cache, fresh worker processes)."""
    cache = root / name / "cache"
    cache.mkdir(parents=True)
    n = len(rows)
    with open(cache.parent / f"corpus-{n}-{seed}.pkl", "wb") as fh:
        pickle.dump((rows, vecs), fh)
    prefill_cache(rows, vecs, cache)
    common = [str(n), str(cache), "--seed", str(seed), "--repeat", "1"]
    d = _spawn(["--worker", "dedup", *common])
    c = _spawn(["--worker", "coverage", *common])
    return {"dedup": d["quality"], "coverage_ids": set(c.get("ids", []))}


def coverage_score(ids: set[str], index: dict[str, int], ref: np.ndarray, block: int = 2048) -> float:
    """Mean cosine, on the reference vectors, of every text to its closest kept row (how well the kept rows cover)."""
    kept = ref[sorted(index[i] for i in ids)]
    best = [(ref[s:s + block] @ kept.T).max(axis=1) for s in range(0, len(ref), block)]
    return float(np.concatenate(best).mean())


def coverage_other_seed(rows: list[dict], root: Path, name: str, seed: int) -> set[str]:
    """The rows ``SelectCoverage`` keeps on route ``name``'s cached vectors with another clustering seed."""
    from synthrun.context import StageContext
    from synthrun.stages.select_coverage import SelectCoverage

    records = as_records(rows)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = StageContext(name="coverage", run_id="bench", run_dir=Path(tmp), stage_dir=Path(tmp),
                           show_progress=False, seed=seed)
        out = SelectCoverage(reduction_ratio=0.1, cache_dir=str(root / name / "cache")).run(records, ctx)
    return {r.id for r in out}


def run_real(args) -> None:  # noqa: ANN001 - the argparse namespace of selection.py
    """``--real N``: real texts, each route timed, agreement, dedup P/R and coverage overlap."""
    root = Path(tempfile.mkdtemp(prefix="synthrun-bench-real-"))
    rows = real_corpus(args.real, args.seed, args.corpus)
    texts = [r["question"] for r in rows]
    lens = token_lengths(texts)
    print(f"real texts: {len(texts)} {args.corpus} ({DUP_RATE:.0%} planted near-duplicates); load "
          f"{tuple(round(x, 2) for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"  tokens: mean {lens['mean']:.1f} median {lens['median']:.0f} p90 {lens['p90']:.0f} max {lens['max']}; "
          f"{lens['truncated']:.1%} truncated at max_seq_length {lens['max_seq_length']}")
    k = min(args.torch_sample, len(texts))
    ref = embed_route("torch", texts[:k], args.batch_size) if k else None
    if ref:
        print(f"  torch on {k}: {ref['per_s']:.0f} texts/s ({ref['per_cpu_s']:.0f} per CPU-second)")
    first: dict | None = None
    index: dict[str, int] = {}
    for route in args.routes:
        r = embed_route(route, texts, args.batch_size)
        vecs = r["vecs"]
        line = (f"  {r['route']:9s} batch {args.batch_size}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU = "
                f"{r['per_s']:.0f} texts/s ({r['per_cpu_s']:.0f} per CPU-second)")
        if ref:
            cos = (vecs[:k] * ref["vecs"]).sum(axis=1)
            line += f"; cosine to torch min {cos.min():.6f} mean {cos.mean():.6f}"
        print(line, flush=True)
        r["pairs"] = _pairs(vecs)
        r.update(_stages(rows, vecs, root, r["route"], args.seed))
        q = r["dedup"]
        print(f"    pairs >= {EMB_THRESHOLD}: {len(r['pairs'])}; dedup precision {q['precision']:.3f} recall "
              f"{q['recall']:.3f} ({q['pred_pairs']} predicted / {q['true_pairs']} planted pairs); coverage keeps "
              f"{len(r['coverage_ids'])} rows", flush=True)
        if first is None:
            first = r
            index = {row["id"]: i for i, row in enumerate(rows)}
            other = coverage_other_seed(rows, root, r["route"], args.seed + 1)
            print(f"    coverage score (mean cosine of every text to its closest kept row, {r['route']} vectors): "
                  f"{coverage_score(r['coverage_ids'], index, vecs):.4f}; clustering seed {args.seed + 1} instead: "
                  f"{coverage_score(other, index, vecs):.4f}, rows in common with seed {args.seed} "
                  f"{len(other & r['coverage_ids']) / max(1, len(other)):.1%}", flush=True)
            continue
        cos = (vecs * first["vecs"]).sum(axis=1)
        same = len(r["coverage_ids"] & first["coverage_ids"]) / max(1, len(first["coverage_ids"]))
        print(f"    vs {first['route']} on all {len(texts)}: cosine min {cos.min():.6f} mean {cos.mean():.6f}; pairs "
              f"common {len(r['pairs'] & first['pairs'])}, only {r['route']} {len(r['pairs'] - first['pairs'])}, "
              f"only {first['route']} {len(first['pairs'] - r['pairs'])}; coverage rows in common {same:.1%}, "
              f"coverage score on {first['route']} vectors {coverage_score(r['coverage_ids'], index, first['vecs']):.4f}",
              flush=True)
    shutil.rmtree(root, ignore_errors=True)
