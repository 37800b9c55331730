"""TOUCAN-style coverage selection: cluster embeddings, then pick across every cluster."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from synthrun.context import StageContext
from synthrun.embeddings import (
    DEFAULT_MODEL,
    embed_with_progress,
    fit_centres,
    nearest_centres,
    stage_embedder,
)
from synthrun.records import Record
from synthrun.stage import Stage
from synthrun.textfields import prompt_text


def cluster(vectors: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster normalised ``vectors`` into ``k`` groups; return ``(labels, unit-length centres)``.

    Small sets get full k-means; large ones k-means fitted on a sample, then every vector
    assigned to its nearest centre (time linear in the number of vectors).
    """
    centres = fit_centres(vectors, max(1, min(k, len(vectors))), seed=seed)
    labels = nearest_centres(vectors, centres)[:, 0]
    norms = np.linalg.norm(centres, axis=1, keepdims=True)
    return labels, centres / np.where(norms > 0, norms, 1.0)


def allocate(sizes: np.ndarray, target: int) -> np.ndarray:
    """Split ``target`` picks over clusters: one per cluster first, the rest proportionally to size.

    Uses the largest-remainder method; no cluster gets more picks than members.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    target = min(int(target), int(sizes.sum()))
    quota = np.zeros(len(sizes), dtype=np.int64)
    nonempty = np.flatnonzero(sizes > 0)
    if target <= len(nonempty):  # fewer picks than clusters: the biggest clusters get one each
        quota[nonempty[np.argsort(-sizes[nonempty], kind="stable")[:target]]] = 1
        return quota
    quota[nonempty] = 1
    while quota.sum() < target:
        room = sizes - quota
        left = target - quota.sum()
        share = left * room / room.sum()
        add = np.minimum(np.floor(share).astype(np.int64), room)
        if add.sum() == 0:
            order = np.argsort(-(share - np.floor(share)), kind="stable")
            order = order[room[order] > 0][:left]
            add = np.zeros_like(quota)
            add[order] = 1
        quota += add
    return quota


def farthest_first(vectors: np.ndarray, count: int, start: int) -> list[int]:
    """Greedy max-min (farthest point) selection of ``count`` rows, starting at row ``start``."""
    chosen = [start]
    best = 1.0 - vectors @ vectors[start]  # cosine distance to the chosen set
    best[start] = -np.inf
    while len(chosen) < min(count, len(vectors)):
        nxt = int(np.argmax(best))
        chosen.append(nxt)
        best = np.minimum(best, 1.0 - vectors @ vectors[nxt])
        best[chosen] = -np.inf
    return chosen


class SelectCoverage(Stage):
    """Keep a subset that covers the topic space: cluster the embeddings of one text field
    and pick from every cluster in proportion to its size.

    Every kept record gets ``cluster_id`` and ``original_index`` (its position in the
    input); records keep their input order.

    Attributes:
        text_field: Field(s) embedded (dotted paths; ``messages.user`` for chat rows); default:
            the instruction/question found from the record shape.
        target_count: Records to keep ...
        reduction_ratio: ... or the fraction of the input to keep (0.25 keeps a quarter).
        strategy: ``centroid`` (the members closest to their cluster's centre) or
            ``diverse`` (spread out: farthest-first inside each cluster, starting at the centre).
        n_clusters: Number of clusters (default: the number kept, at most ``max_clusters``).
        max_clusters: Cap of the default cluster count (bounds clustering time on big sets).
        model: Sentence-transformers model name or folder (default: packaged all-MiniLM-L6-v2).
        cache_dir: Embedding cache folder (default ``${paths.cache_dir}/embeddings``).
        batch_size: Texts per embedding batch.
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    text_field: str | list[str] | None = None
    target_count: int | None = Field(default=None, ge=1)
    reduction_ratio: float | None = Field(default=None, gt=0, le=1)
    strategy: Literal["centroid", "diverse"] = "centroid"
    n_clusters: int | None = Field(default=None, ge=1)
    max_clusters: int = Field(default=1000, ge=1)
    model: str = DEFAULT_MODEL
    cache_dir: str | None = None
    batch_size: int = Field(default=64, ge=1)

    @model_validator(mode="after")
    def _one_size(self) -> SelectCoverage:
        if (self.target_count is None) == (self.reduction_ratio is None):
            raise ValueError("set exactly one of target_count and reduction_ratio")
        return self

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        n = len(records)
        if n == 0:
            return []
        target = self.target_count if self.target_count is not None else max(1, round(n * self.reduction_ratio))
        target = min(target, n)
        texts = [prompt_text(r, self.text_field) for r in records]
        empty = sum(1 for t in texts if not t.strip())
        embedder = stage_embedder(ctx, self.model, self.cache_dir, batch_size=self.batch_size)
        vectors = embed_with_progress(embedder, texts, ctx)
        k = self.n_clusters or min(target, self.max_clusters)
        labels, centres = cluster(vectors, k, seed=ctx.seed)
        k = len(centres)
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(k + 1))
        sizes = np.diff(bounds)
        quota = allocate(sizes, target)
        picked: list[int] = []
        for c in np.flatnonzero(quota):
            members = order[bounds[c]:bounds[c + 1]]
            vec = vectors[members]
            closeness = vec @ centres[c]
            if self.strategy == "centroid" or quota[c] == 1:
                local = np.argsort(-closeness, kind="stable")[: quota[c]]
            else:
                local = farthest_first(vec, int(quota[c]), int(np.argmax(closeness)))
            picked.extend(int(i) for i in members[local])
        picked.sort()
        out = [records[i].model_copy(update={"cluster_id": int(labels[i]), "original_index": i}) for i in picked]
        dropped = n - len(out)
        if dropped:
            ctx.fail("not_selected_coverage", dropped)
        ctx.summary.update({
            "input": n, "kept": len(out), "target": target, "clusters": k, "strategy": self.strategy,
            "clusters_covered": int((quota > 0).sum()), "empty_text": empty,
            "cluster_size": {"min": int(sizes.min()), "median": float(np.median(sizes)), "max": int(sizes.max())},
        })
        if empty:
            ctx.log.warning("%d records have no text in %s", empty, self.text_field or "the usual fields")
        return out

