"""Diversity: distance to every better-ranked example, exact or inside k-means groups."""

import numpy as np

from synthrun.scoring.diversity import diversity_scores, max_similarity_to_previous


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_max_similarity_matches_brute_force_across_blocks():
    v = _unit(np.random.default_rng(0).normal(size=(50, 8)))
    got = max_similarity_to_previous(v, block=7)
    sims = v @ v.T
    want = [-1.0] + [sims[i, :i].max() for i in range(1, 50)]
    assert np.allclose(got, want, atol=1e-6)


def test_near_copy_of_a_better_example_scores_zero():
    rng = np.random.default_rng(1)
    base = _unit(rng.normal(size=(6, 16)))
    copy = _unit((base[2] + 0.01 * rng.normal(size=16))[None])
    v = np.vstack([base, copy])
    rank = np.array([0, 1, 2, 3, 4, 5, 6])
    d = diversity_scores(v, rank)
    assert d[6] < 0.5 and d[0] == 10.0 and (d[1:6] > 9).all()
    # rank the copy first: now the original is the redundant one
    d = diversity_scores(v, np.array([1, 2, 6, 3, 4, 5, 0]))
    assert d[2] < 0.5 and d[6] == 10.0


def test_grouped_path_finds_planted_copies():
    rng = np.random.default_rng(2)
    base = _unit(rng.normal(size=(3000, 64)))
    copies = _unit(base[:200] + 0.02 * rng.normal(size=(200, 64)))
    v = np.vstack([base, copies])
    rank = np.arange(len(v))
    d = diversity_scores(v, rank, group_size=1000)
    assert (d[3000:] < 1).mean() > 0.98 and (d[:3000] > 5).mean() > 0.99
