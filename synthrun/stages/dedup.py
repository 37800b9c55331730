"""Exact and near-duplicate removal: normalised-text hashes, MinHash LSH, and embedding cosine.

Three passes find pairs of duplicates; their connected components are the groups,
and each group keeps its best-rated member, which lists the others in
``absorbed_ids``.

1. Exact: equal text after lower-casing and collapsing whitespace and punctuation.
2. MinHash LSH on character n-grams (datasketch's ``affine32`` MinHash, computed for
   all texts at once with numpy, and banded with the (bands, rows) datasketch's
   ``MinHashLSH`` picks for the threshold); every candidate pair is verified with the
   exact Jaccard similarity of the two n-gram sets.
3. Optional embedding cosine (SemDeDup-style): embeddings are grouped with k-means
   and pairs above ``embedding_threshold`` are found inside each group (each text
   also joins its second-nearest group, so pairs near a border are not missed).

The MinHash parts live in :mod:`synthrun.minhash` (``compare`` and ingest use them too).
"""

from __future__ import annotations

import hashlib
import time
from typing import ClassVar

import numpy as np
from pydantic import Field

from synthrun.context import StageContext
from synthrun.embeddings import DEFAULT_MODEL, embed_with_progress, kmeans_groups, stage_embedder
from synthrun.io import write_jsonl
from synthrun.minhash import (
    candidate_pairs,
    jaccard_pairs,
    lsh_params,
    minhash_signatures,
    normalize,
    shingle_hashes,
    unique_pairs,
)
from synthrun.records import Record
from synthrun.stage import Stage, StageError
from synthrun.textfields import get_path, prompt_text

_AUTO_KEEP_BY = ("rating.total", "multi_score.combined")


def embedding_pairs(vectors: np.ndarray, threshold: float, group_size: int = 500, seed: int = 0,
                    block: int = 2048) -> np.ndarray:
    """Pairs (i < j) of rows of normalised ``vectors`` whose cosine is at least ``threshold``.

    Up to ``group_size`` rows are compared all-against-all; above that, rows are grouped
    by k-means (about ``group_size`` per group) and each row joins its two nearest groups.
    """
    if len(vectors) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    groups = kmeans_groups(vectors, group_size, seed=seed, probes=2)
    found = []
    for members in groups:
        m = len(members)
        if m < 2:
            continue
        vec = vectors[members]
        for s in range(0, m, block):
            sims = vec[s:s + block] @ vec[s:].T
            r, c = np.nonzero(sims >= threshold)
            c = c + s
            r = r + s
            upper = c > r
            if upper.any():
                found.append(np.stack([members[r[upper]], members[c[upper]]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    return unique_pairs(np.concatenate(found))


class Dedup(Stage):
    """Remove exact and near-duplicates, keeping the best-rated member of each group.

    Attributes:
        text_field: Field(s) compared (dotted paths, chat ``messages`` handled); default:
            the instruction/question found from the record shape. Use e.g.
            ``[question, answer]`` to compare whole examples.
        exact: Group texts equal after normalisation.
        minhash: Group near-duplicate texts with MinHash LSH.
        threshold: Jaccard similarity of character n-grams at which texts are near-duplicates.
        ngram: Character n-gram length (1-8).
        num_perm: MinHash permutations.
        embedding_threshold: Also group texts whose embedding cosine is at least this
            (None: off; 0.95 catches light paraphrases).
        model: Sentence-transformers model for the embedding pass (default: packaged all-MiniLM-L6-v2).
        cache_dir: Embedding cache folder (default ``${paths.cache_dir}/embeddings``).
        group_size: Texts compared all-against-all in the embedding pass (k-means groups above).
        keep_by: Dotted field whose highest value wins in a group (ties: first record);
            ``auto`` uses ``rating.total`` or else ``multi_score.combined`` when records have them.
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    text_field: str | list[str] | None = None
    exact: bool = True
    minhash: bool = True
    threshold: float = Field(default=0.7, gt=0, le=1)
    ngram: int = Field(default=5, ge=1, le=8)
    num_perm: int = Field(default=128, ge=16, le=1024)
    embedding_threshold: float | None = Field(default=None, gt=0, le=1)
    model: str = DEFAULT_MODEL
    cache_dir: str | None = None
    group_size: int = Field(default=500, ge=50)
    keep_by: str = "auto"

    def _keep_field(self, records: list[Record]) -> str | None:
        if self.keep_by != "auto":
            return self.keep_by
        for name in _AUTO_KEEP_BY:
            if any(get_path(r, name) is not None for r in records):
                return name
        return None

    def _scores(self, records: list[Record], field: str | None) -> np.ndarray:
        scores = np.full(len(records), -np.inf)
        if field is None:
            return scores
        for i, r in enumerate(records):
            value = get_path(r, field)
            if value is None:
                continue
            try:
                scores[i] = float(value)
            except (TypeError, ValueError):
                raise StageError(f"dedup: keep_by field '{field}' of record {r.id or i} is not a number "
                                 f"({value!r})") from None
        return scores

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        n = len(records)
        if n == 0:
            return []
        clock = time.perf_counter()
        timings: dict[str, float] = {}

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = round(now - clock, 3)
            clock = now

        texts = [prompt_text(r, self.text_field) for r in records]
        has_text = np.array([bool(t.strip()) for t in texts])
        live = np.flatnonzero(has_text)
        edges: dict[str, np.ndarray] = {}

        # 1. exact: map every text to the first text with the same normalised form
        norm = [normalize(texts[i]) or texts[i].strip() for i in live]
        rep_of: dict[bytes, int] = {}
        exact_edges = []
        reps = []
        for i, t in zip(live, norm, strict=True):
            key = hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            first = rep_of.get(key) if self.exact else None
            if first is None:
                rep_of[key] = int(i)
                reps.append(int(i))
            else:
                exact_edges.append((first, int(i)))
        edges["exact"] = np.array(exact_edges, dtype=np.int64).reshape(-1, 2)
        reps_arr = np.array(reps, dtype=np.int64)
        rep_norm = {int(i): t for i, t in zip(live, norm, strict=True)}
        lap("exact_s")

        # 2. MinHash LSH on the distinct texts, verified with exact Jaccard
        if self.minhash and len(reps) > 1:
            hashes, offsets = shingle_hashes([rep_norm[i] for i in reps], self.ngram)
            sig = minhash_signatures(hashes, offsets, self.num_perm)
            bands, rows = lsh_params(self.threshold, self.num_perm)
            cand = candidate_pairs(sig, bands, rows)
            sims = jaccard_pairs(cand, hashes, offsets)
            near = cand[sims >= self.threshold]
            edges["minhash"] = reps_arr[near] if len(near) else np.zeros((0, 2), dtype=np.int64)
            ctx.summary["minhash"] = {"bands": bands, "rows": rows, "candidates": int(len(cand)),
                                      "verified": int(len(near))}
            lap("minhash_s")

        # 3. embedding cosine on the distinct texts
        if self.embedding_threshold is not None and len(reps) > 1:
            embedder = stage_embedder(ctx, self.model, self.cache_dir)
            vectors = embed_with_progress(embedder, [texts[i] for i in reps], ctx)
            pairs = embedding_pairs(vectors, self.embedding_threshold, self.group_size, seed=ctx.seed)
            edges["embedding"] = reps_arr[pairs] if len(pairs) else np.zeros((0, 2), dtype=np.int64)
            lap("embedding_s")

        all_edges = np.concatenate(list(edges.values()))
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        graph = coo_matrix((np.ones(len(all_edges), dtype=np.int8), (all_edges[:, 0], all_edges[:, 1])),
                           shape=(n, n))
        _, comp = connected_components(graph, directed=False)

        field = self._keep_field(records)
        scores = self._scores(records, field)
        order = np.lexsort((np.arange(n), -scores, comp))  # by group, best score, earliest
        first = np.ones(n, dtype=bool)
        first[1:] = comp[order][1:] != comp[order][:-1]
        keeper_of_comp = {int(comp[i]): int(i) for i in order[first]}
        absorbed: dict[int, list[int]] = {}
        for i in order[~first]:
            absorbed.setdefault(keeper_of_comp[int(comp[i])], []).append(int(i))

        def rid(i: int) -> str:
            return records[i].id or f"#{i}"

        out: list[Record] = []
        groups = []
        keepers = sorted(keeper_of_comp.values())
        for k in keepers:
            record = records[k]
            members = absorbed.get(k)
            if members:
                members.sort()
                ids = list(get_path(record, "absorbed_ids") or [])
                for m in members:
                    ids.append(rid(m))
                    ids.extend(get_path(records[m], "absorbed_ids") or [])
                record = record.model_copy(update={"absorbed_ids": ids})
                groups.append({"kept": rid(k), "absorbed": [rid(m) for m in members]})
            out.append(record)
        removed = n - len(out)
        if removed:
            ctx.fail("duplicate", removed)
        write_jsonl(ctx.stage_dir / "duplicate_groups.jsonl", groups)
        lap("grouping_s")
        ctx.summary.update({
            "input": n, "kept": len(out), "removed": removed, "groups": len(groups),
            "pairs": {name: int(len(e)) for name, e in edges.items()}, "no_text": int(n - len(live)), "keep_by": field, "timings": timings,
        })
        return out
