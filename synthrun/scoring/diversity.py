"""DEITA's diversity signal: how far an example is from the better-ranked ones before it."""

from __future__ import annotations

import numpy as np

from synthrun.embeddings import kmeans_groups


def max_similarity_to_previous(vectors: np.ndarray, block: int = 2048) -> np.ndarray:
    """For each row of normalised ``vectors``, its highest cosine to any earlier row (-1 for the first)."""
    n = len(vectors)
    out = np.full(n, -1.0, dtype=np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        if stop <= 1:
            continue
        sims = vectors[start:stop] @ vectors[:stop].T
        rows = np.arange(stop - start)[:, None]
        sims[np.arange(stop)[None, :] >= (start + rows)] = -1.0
        out[start:stop] = sims.max(axis=1)
    return out


def diversity_scores(vectors: np.ndarray, rank: np.ndarray, saturation: float = 0.6,
                     group_size: int = 1000, seed: int = 0) -> np.ndarray:
    """Score each example 0-10 by its cosine distance to every example ranked ahead of it.

    ``10 * min(1, (1 - max cosine to a better-ranked example) / saturation)``: the
    best-ranked example of a topic scores 10, a near copy of a better one scores ~0.
    Above ``group_size`` examples the comparison runs inside overlapping k-means groups
    (similar examples share a group), so the cost stays near-linear instead of quadratic.

    Args:
        vectors: L2-normalised embeddings, one row per example.
        rank: Position of each example in the ranking (0 = best).
        saturation: Cosine distance at which an example counts as fully novel.
        group_size: Largest set compared all-against-all.
        seed: Seed of the grouping.
    """
    n = len(vectors)
    maxsim = np.full(n, -1.0, dtype=np.float32)
    if n == 0:
        return maxsim
    for members in kmeans_groups(vectors, group_size, seed=seed, probes=2):
        if len(members) == 0:
            continue
        ordered = members[np.argsort(rank[members], kind="stable")]
        maxsim[ordered] = np.maximum(maxsim[ordered], max_similarity_to_previous(vectors[ordered]))
    distance = 1.0 - np.maximum(maxsim, -1.0)
    return np.round(10.0 * np.clip(distance / saturation, 0.0, 1.0), 2)
