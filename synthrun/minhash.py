"""MinHash near-duplicate detection over character n-grams (numpy, datasketch-compatible).

Used by the ``dedup`` stage, ``compare`` (near-duplicate rate of a dataset) and ingest's duplicate
chunk check:

* :func:`normalize`: the exact-duplicate key (lower case, punctuation and whitespace collapsed);
* :func:`shingle_hashes`: 32-bit hashes of every text's character n-grams, many texts per numpy call;
* :func:`minhash_signatures`: datasketch's ``affine32`` MinHash of every text, vectorised;
* :func:`lsh_params` / :func:`candidate_pairs`: LSH banding as datasketch's ``MinHashLSH`` does it
  (:func:`band_keys` / :func:`band_pairs`: the same in two steps, keeping 8 bytes per band and text);
* :func:`jaccard_pairs`: the exact Jaccard similarity that verifies each candidate pair;
* :func:`near_duplicate_pairs`: all of the above for a list of texts.
"""

from __future__ import annotations

import re

import numpy as np

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)


def normalize(text: str) -> str:
    """Lower-case ``text`` and collapse punctuation and whitespace (the exact-duplicate key)."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix of the ``affine32`` scheme)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _chunk_hashes(data: list[bytes], ngram: int) -> np.ndarray:
    lengths = np.fromiter((len(d) for d in data), dtype=np.int64, count=len(data))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    total = int(starts[-1])
    buf = np.frombuffer(b"".join(data) + b"\0" * ngram, dtype=np.uint8)
    code = np.zeros(total, dtype=np.uint64)
    for j in range(ngram):
        code |= buf[j:j + total].astype(np.uint64) << np.uint64(8 * (ngram - 1 - j))
    # drop windows running past the end of their text (the last ngram-1 positions of each)
    valid = np.ones(total, dtype=bool)
    for j in range(1, ngram):
        pos = starts[1:] - j
        valid[pos[pos >= starts[:-1]]] = False
    codes = code[valid]
    short = np.flatnonzero(lengths < ngram)
    if len(short):
        # a text shorter than ngram keeps one n-gram: its own bytes, zero padded, flagged by bit 63
        before = np.concatenate([[0], np.cumsum(np.maximum(lengths - ngram + 1, 0))])
        values = []
        for i in short:
            value = int.from_bytes(data[i], "big") if data[i] else 0
            values.append((value << (8 * (ngram - len(data[i])))) | (1 << 63))
        codes = np.insert(codes, before[short], np.array(values, dtype=np.uint64))
    return ((codes * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)).astype(np.uint32)


def shingle_hashes(texts: list[str], ngram: int = 5, chunk_bytes: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Hash the character n-grams of every text, many texts per numpy call.

    Each n-gram of UTF-8 bytes (``ngram`` <= 8) is packed into one 64-bit integer and
    reduced to 32 bits by Fibonacci hashing. A text shorter than ``ngram`` bytes gives
    one n-gram (itself).

    Returns:
        ``(hashes, offsets)``: the uint32 hashes of text ``i`` are ``hashes[offsets[i]:offsets[i+1]]``.
    """
    if not 1 <= ngram <= 8:
        raise ValueError("ngram must be between 1 and 8")
    data = [t.encode("utf-8", "surrogatepass") for t in texts]
    counts = np.fromiter((max(len(d) - ngram + 1, 1) for d in data), dtype=np.int64, count=len(data))
    parts = []
    i = 0
    while i < len(data):
        j, size = i, 0
        while j < len(data) and (j == i or size + len(data[j]) <= chunk_bytes):
            size += len(data[j])
            j += 1
        parts.append(_chunk_hashes(data[i:j], ngram))
        i = j
    hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint32)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return hashes, offsets


def minhash_signatures(hashes: np.ndarray, offsets: np.ndarray, num_perm: int = 128, seed: int = 1,
                       chunk: int = 8192) -> np.ndarray:
    """Return the MinHash signature of every text (rows), as datasketch's ``affine32`` scheme computes it.

    Equal to ``MinHash(num_perm, seed, scheme="affine32", hashfunc=...)`` fed the same
    32-bit shingle hashes, but vectorised over many texts per numpy call.
    """
    from datasketch import MinHash

    a, b = (np.asarray(p, dtype=np.uint32)[:, None]
            for p in MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations)
    n = len(offsets) - 1
    sig = np.empty((n, num_perm), dtype=np.uint32)
    doc = 0
    while doc < n:
        # take texts until about `chunk` shingles are gathered (at least one text)
        stop = int(np.searchsorted(offsets, offsets[doc] + chunk, side="right")) - 1
        stop = min(n, max(stop, doc + 1))
        lo, hi = int(offsets[doc]), int(offsets[stop])
        phv = a * _fmix32(hashes[None, lo:hi]) + b  # (num_perm, shingles): reducing along rows is faster
        sig[doc:stop] = np.minimum.reduceat(phv, offsets[doc:stop] - lo, axis=1).T
        doc = stop
    return sig


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) that datasketch's MinHashLSH picks for ``threshold`` and ``num_perm``."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return int(lsh.b), int(lsh.r)


def _pairs_in_buckets(keys: np.ndarray, max_bucket: int = 64) -> np.ndarray:
    """Pairs of row indices whose ``keys`` (1-d, comparable) are equal; big buckets are linked as stars."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    boundary = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    starts = np.concatenate([[0], boundary])
    sizes = np.diff(np.concatenate([starts, [len(keys)]]))
    out = []
    two = starts[sizes == 2]
    if len(two):
        out.append(np.stack([order[two], order[two + 1]], axis=1))
    for s, m in zip(starts[sizes > 2], sizes[sizes > 2], strict=True):
        members = order[s:s + m]
        if m <= max_bucket:
            i, j = np.triu_indices(m, 1)
            out.append(np.stack([members[i], members[j]], axis=1))
        else:
            out.append(np.stack([np.full(m - 1, members[0]), members[1:]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """Sort each pair (i < j) and drop repeats."""
    if not len(pairs):
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(pairs.astype(np.int64), axis=1)
    code = np.unique(pairs[:, 0] << np.int64(32) | pairs[:, 1])
    return np.stack([code >> np.int64(32), code & np.int64(0xFFFFFFFF)], axis=1)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per LSH band of every signature row: ``(texts, bands)`` uint64.

    A key hashes its band's rows (collisions only add candidates, all verified). 8 bytes per band
    instead of 4 per permutation: what a streamed dedup keeps per text.
    """
    keys = np.zeros((len(sig), bands), dtype=np.uint64)
    for band in range(bands):
        part = sig[:, band * rows:(band + 1) * rows]
        key = keys[:, band]
        for col in range(part.shape[1]):
            key *= np.uint64(0x100000001B3)
            key ^= part[:, col].astype(np.uint64)
    return keys


def band_pairs(keys: np.ndarray) -> np.ndarray:
    """Pairs of rows of ``keys`` (from :func:`band_keys`) equal in at least one band (deduplicated, i < j)."""
    found = [_pairs_in_buckets(np.ascontiguousarray(keys[:, band])) for band in range(keys.shape[1])]
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    return unique_pairs(np.concatenate(found))


def candidate_pairs(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Pairs of texts that share at least one LSH band of their signatures (deduplicated, i < j)."""
    return band_pairs(band_keys(sig, bands, rows))


def jaccard_pairs(pairs: np.ndarray, hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Exact Jaccard similarity of the n-gram sets of each pair."""
    sets: dict[int, np.ndarray] = {}

    def get(i: int) -> np.ndarray:
        s = sets.get(i)
        if s is None:
            s = sets[i] = np.unique(hashes[offsets[i]:offsets[i + 1]])
        return s

    out = np.empty(len(pairs))
    for k, (i, j) in enumerate(pairs):
        a, b = get(int(i)), get(int(j))
        inter = len(np.intersect1d(a, b, assume_unique=True))
        out[k] = inter / (len(a) + len(b) - inter)
    return out


def near_duplicate_pairs(texts: list[str], threshold: float = 0.7, ngram: int = 5,
                         num_perm: int = 128) -> np.ndarray:
    """Pairs (i < j) of ``texts`` equal after :func:`normalize` or near-duplicates (MinHash LSH candidates
    verified by exact Jaccard >= ``threshold`` on character n-grams)."""
    norm = [normalize(t) or t.strip() for t in texts]
    hashes, offsets = shingle_hashes(norm, ngram)
    sig = minhash_signatures(hashes, offsets, num_perm)
    cand = candidate_pairs(sig, *lsh_params(threshold, num_perm))
    near = cand[jaccard_pairs(cand, hashes, offsets) >= threshold] if len(cand) else cand
    first: dict[str, int] = {}
    exact = []
    for i, t in enumerate(norm):
        j = first.setdefault(t, i)
        if j != i:
            exact.append((j, i))
    return np.concatenate([near.reshape(-1, 2), np.array(exact, dtype=np.int64).reshape(-1, 2)])
