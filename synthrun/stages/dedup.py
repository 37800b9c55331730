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

Memory: the stage reads its input in passes (``streams_input``: for a big input the runner hands it a
re-iterable :class:`~synthrun.recordfile.RecordStream`, not a list). Pass 1 keeps per record 8 bytes per
``keep_by`` candidate field and, per record with text, its index, a 16-byte hash of its normalised text
and 8 bytes per LSH band (14 bands at the defaults): ~150 bytes, no record and no text (unless the
embedding pass is on: it needs the distinct texts). Pass 2 reads again only to verify the LSH candidate
pairs (their n-grams) and to take the ids of the records in a group; pass 3 streams the kept records.
A list in gives a list out, as before.
"""

from __future__ import annotations

import hashlib
import math
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from pydantic import Field

from synthrun.context import StageContext
from synthrun.embeddings import DEFAULT_MODEL, embed_with_progress, kmeans_groups, stage_embedder
from synthrun.io import write_jsonl
from synthrun.minhash import (
    band_keys,
    band_pairs,
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
_BATCH = 4096  # texts shingled and MinHashed per numpy call in the scan


class _Laps:
    def __init__(self) -> None:
        self.clock = time.perf_counter()
        self.timings: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.clock, 3)
        self.clock = now


@dataclass
class _Scan:
    """What pass 1 keeps: per record 8 bytes per score field; per record with text its index, a 16-byte
    hash of its normalised text and 8 bytes per LSH band (plus its text only when embeddings are on)."""

    fields: tuple[str, ...]
    texts: list[str] | None = None
    n: int = 0
    live: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    digests: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.uint64))
    keys: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.uint64))
    lsh: tuple[int, int] = (0, 0)
    values: dict[str, array[float]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    bad: dict[str, str] = field(default_factory=dict)

    def add_score(self, name: str, record: Record, i: int) -> None:
        column = self.values.setdefault(name, array("d"))
        value = get_path(record, name)
        if value is None:
            column.append(-math.inf)
            return
        self.seen.add(name)
        try:
            column.append(float(value))
        except (TypeError, ValueError):
            column.append(-math.inf)
            self.bad.setdefault(name, f"dedup: keep_by field '{name}' of record {record.id or i} is not a "
                                      f"number ({value!r})")

    def chosen(self, keep_by: str) -> str | None:
        """The keep_by field (``auto``: the first of rating.total, multi_score.combined that records have)."""
        name = keep_by if keep_by != "auto" else next((f for f in self.fields if f in self.seen), None)
        if name is not None and name in self.bad:
            raise StageError(self.bad[name])
        return name

    def scores(self, name: str | None, n: int) -> np.ndarray:
        if name is None or name not in self.values:
            return np.full(n, -np.inf)
        return np.frombuffer(self.values[name], dtype=np.float64).copy()


class _Rows:
    """LSH band keys of every text with text, filled batch by batch (in one preallocated array when the
    input's length is known, so there is no second copy at the end)."""

    def __init__(self, bands: int, expect: int):
        self.buf = np.empty((expect, bands), dtype=np.uint64)
        self.parts: list[np.ndarray] = []
        self.filled = 0

    def add(self, part: np.ndarray) -> None:
        if not self.parts and self.filled + len(part) <= len(self.buf):
            self.buf[self.filled:self.filled + len(part)] = part
            self.filled += len(part)
        else:
            self.parts.append(part)

    def done(self, count: int) -> np.ndarray:
        if self.parts:
            return np.concatenate([self.buf[:self.filled], *self.parts])[:count]
        return self.buf[:count]


@dataclass
class _Plan:
    n: int
    scan: _Scan
    edges: dict[str, np.ndarray]
    info: dict[int, tuple[str, list[str]]]
    field: str | None


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
    #: It reads its input in passes: the runner may hand it a re-iterable stream instead of a list.
    streams_input: ClassVar[bool] = True

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

    def _score_fields(self) -> tuple[str, ...]:
        return _AUTO_KEEP_BY if self.keep_by == "auto" else (self.keep_by,)

    def _band_keys(self, norm: list[str], bands: int, rows: int) -> np.ndarray:
        hashes, offsets = shingle_hashes(norm, self.ngram)
        return band_keys(minhash_signatures(hashes, offsets, self.num_perm), bands, rows)

    def _scan(self, records: Iterable[Record]) -> _Scan:
        """Pass 1: per record only its compact keys (text hash, LSH band keys, scores); no record kept."""
        scan = _Scan(self._score_fields(), texts=[] if self.embedding_threshold is not None else None)
        bands, rows = lsh_params(self.threshold, self.num_perm) if self.minhash else (0, 0)
        keys = _Rows(bands, len(records) if isinstance(records, Sized) else 0)
        digests = bytearray()
        live = array("q")
        batch: list[str] = []
        for i, r in enumerate(records):
            scan.n += 1
            for name in scan.fields:
                scan.add_score(name, r, i)
            t = prompt_text(r, self.text_field)
            if not t.strip():
                continue
            norm = normalize(t) or t.strip()
            live.append(i)
            digests += hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            if scan.texts is not None:
                scan.texts.append(t)
            if bands:
                batch.append(norm)
                if len(batch) == _BATCH:
                    keys.add(self._band_keys(batch, bands, rows))
                    batch = []
        if batch:
            keys.add(self._band_keys(batch, bands, rows))
        scan.live = np.frombuffer(live, dtype=np.int64).copy() if live else np.zeros(0, dtype=np.int64)
        scan.digests = np.frombuffer(bytes(digests), dtype=np.uint64).reshape(-1, 2)
        scan.keys = keys.done(len(scan.live))
        scan.lsh = (bands, rows)
        return scan

    def _exact(self, scan: _Scan) -> tuple[np.ndarray, np.ndarray]:
        """(rep positions in ``scan.live``, exact edges as record indices): first text of each normalised form."""
        m = len(scan.live)
        if not self.exact or m == 0:
            return np.arange(m, dtype=np.int64), np.zeros((0, 2), dtype=np.int64)
        pos = np.arange(m, dtype=np.int64)
        order = np.lexsort((pos, scan.digests[:, 1], scan.digests[:, 0]))  # equal texts together, earliest first
        d = scan.digests[order]
        new = np.ones(m, dtype=bool)
        new[1:] = (d[1:] != d[:-1]).any(axis=1)
        first = np.empty(m, dtype=np.int64)
        first[order] = order[new][np.cumsum(new) - 1]
        reps = np.flatnonzero(first == pos)
        dup = np.flatnonzero(first != pos)
        return reps, np.stack([scan.live[first[dup]], scan.live[dup]], axis=1)

    def _verify(self, records: Iterable[Record], cand_records: np.ndarray, cand: np.ndarray,
                members: np.ndarray) -> tuple[np.ndarray, dict[int, tuple[str, list[str]]]]:
        """Pass 2: exact Jaccard of the candidate pairs (given as record indices ``cand_records`` rows
        ``cand``) and the id / absorbed ids of every record that may join a group (``members``)."""
        need = np.unique(cand_records)
        info: dict[int, tuple[str, list[str]]] = {}
        norm: list[str] = []
        if len(members) or len(need):
            top = int(max(members.max(initial=-1), need.max(initial=-1))) + 1
            want = np.zeros(top, dtype=np.int8)
            want[members] |= 1
            want[need] |= 2
            for i, r in enumerate(records):
                if i >= top:
                    break
                if want[i] & 1:
                    info[i] = (r.id or f"#{i}", list(get_path(r, "absorbed_ids") or []))
                if want[i] & 2:
                    t = prompt_text(r, self.text_field)
                    norm.append(normalize(t) or t.strip())
        if not len(cand):
            return np.zeros(0), info
        hashes, offsets = shingle_hashes(norm, self.ngram)
        return jaccard_pairs(np.searchsorted(need, cand_records), hashes, offsets), info

    def _decide(self, records: Iterable[Record], ctx: StageContext, timer: _Laps) -> _Plan:
        """Passes 1 and 2: which records are kept, and what each keeper absorbs."""
        scan = self._scan(records)
        timer.lap("scan_s")
        n = scan.n
        reps, exact_edges = self._exact(scan)
        edges: dict[str, np.ndarray] = {"exact": exact_edges}
        timer.lap("exact_s")
        cand = np.zeros((0, 2), dtype=np.int64)
        if self.minhash and len(reps) > 1:
            cand = band_pairs(scan.keys[reps] if len(reps) < len(scan.keys) else scan.keys)
        scan.keys = np.zeros((0, 0), dtype=np.uint64)  # 8 bytes per band and text: not needed any more
        reps_rec = scan.live[reps]
        cand_records = reps_rec[cand] if len(cand) else cand
        if self.embedding_threshold is not None and len(reps) > 1 and scan.texts is not None:
            embedder = stage_embedder(ctx, self.model, self.cache_dir)
            vectors = embed_with_progress(embedder, [scan.texts[int(k)] for k in reps], ctx)
            pairs = embedding_pairs(vectors, self.embedding_threshold, self.group_size, seed=ctx.seed)
            edges["embedding"] = reps_rec[pairs] if len(pairs) else np.zeros((0, 2), dtype=np.int64)
            scan.texts = None
            timer.lap("embedding_s")
        members = np.unique(np.concatenate([cand_records.ravel(), *(e.ravel() for e in edges.values())]))
        sims, info = self._verify(records, cand_records, cand, members)
        if self.minhash and len(reps) > 1:
            near = cand_records[sims >= self.threshold]
            edges["minhash"] = near if len(near) else np.zeros((0, 2), dtype=np.int64)
            bands, rows = scan.lsh
            ctx.summary["minhash"] = {"bands": bands, "rows": rows, "candidates": int(len(cand)),
                                      "verified": int(len(near))}
            timer.lap("minhash_s")
        edges = {k: edges[k] for k in ("exact", "minhash", "embedding") if k in edges}
        return _Plan(n=n, scan=scan, edges=edges, info=info, field=scan.chosen(self.keep_by))

    def _group(self, plan: _Plan) -> tuple[np.ndarray, dict[int, list[int]]]:
        """Connected components of the duplicate pairs: the keep mask and each keeper's absorbed records."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = plan.n
        all_edges = np.concatenate(list(plan.edges.values()))
        graph = coo_matrix((np.ones(len(all_edges), dtype=np.int8), (all_edges[:, 0], all_edges[:, 1])),
                           shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        scores = plan.scan.scores(plan.field, n)
        order = np.lexsort((np.arange(n), -scores, comp))  # by group, best score, earliest
        first = np.ones(n, dtype=bool)
        first[1:] = comp[order][1:] != comp[order][:-1]
        keep = np.zeros(n, dtype=bool)
        keep[order[first]] = True
        keeper_of_comp = np.empty(int(comp.max()) + 1 if n else 0, dtype=np.int64)
        keeper_of_comp[comp[order[first]]] = order[first]
        absorbed: dict[int, list[int]] = {}
        for i in order[~first]:
            absorbed.setdefault(int(keeper_of_comp[comp[i]]), []).append(int(i))
        return keep, absorbed

    def _emit(self, records: Iterable[Record], keep: np.ndarray,
              ids: dict[int, list[str]]) -> Iterator[Record]:
        """Pass 3: the kept records in input order (a keeper lists what it absorbed)."""
        for i, record in enumerate(records):
            if keep[i]:
                extra = ids.get(i)
                yield record if extra is None else record.model_copy(update={"absorbed_ids": extra})

    def run(self, records: Iterable[Record], ctx: StageContext) -> list[Record] | Iterator[Record]:  # type: ignore[override]
        """Keep one record per duplicate group. A list (any sequence) gives a list; a re-iterable stream (the runner's
        :class:`~synthrun.recordfile.RecordStream`) is read in passes and the kept records are streamed."""
        timer = _Laps()
        plan = self._decide(records, ctx, timer)
        n = plan.n
        if n == 0:
            return []
        keep, absorbed = self._group(plan)
        info = plan.info
        groups = []
        ids: dict[int, list[str]] = {}
        for k in sorted(absorbed):
            members = sorted(absorbed[k])
            rid, own = info[k]
            merged = list(own)
            for m in members:
                merged.append(info[m][0])
                merged.extend(info[m][1])
            ids[k] = merged
            groups.append({"kept": rid, "absorbed": [info[m][0] for m in members]})
        kept = int(keep.sum())
        removed = n - kept
        if removed:
            ctx.fail("duplicate", removed)
        write_jsonl(ctx.stage_dir / "duplicate_groups.jsonl", groups)
        timer.lap("grouping_s")
        ctx.summary.update({
            "input": n, "kept": kept, "removed": removed, "groups": len(groups),
            "pairs": {name: int(len(e)) for name, e in plan.edges.items()},
            "no_text": int(n - len(plan.scan.live)), "keep_by": plan.field, "timings": timer.timings,
        })
        out = self._emit(records, keep, ids)
        return list(out) if isinstance(records, Sequence) else out
