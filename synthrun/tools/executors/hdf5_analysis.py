"""The HDF5 executor's performance and discovery tools (scan, batch read, stream, statistics, structure,
similar datasets, next steps, bottlenecks, chunking advice), and the value conversions all tools share.

:class:`AnalysisTools` is mixed into :class:`~synthrun.tools.executors.hdf5.HDF5Session`; its methods use
the session's helpers (``_read_file``, ``_walk``, ``_int``, ``_dataset``).
"""

from __future__ import annotations

import fnmatch
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from synthrun.tools.executors.base import ToolCallError

MAX_VALUES = 256


def _py(value: Any) -> Any:
    """A JSON-able Python value from numpy/h5py values."""
    import numpy as np

    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S":
            return [_py(v) for v in value.tolist()] if value.ndim else _py(value.item())
        if value.dtype.kind == "O":
            return [_py(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_py(v) for v in value]
    return value


def _values(arr, limit: int) -> tuple[Any, bool]:
    """Values of an array (nested lists), or the first ``limit`` flattened when larger."""
    if arr.size <= limit:
        return _py(arr), False
    return _py(arr.reshape(-1)[:limit]), True


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


class AnalysisTools:
    """The ``t_*`` methods of the HDF5 tools that read whole files (mixed into the session)."""

    # ------------------------------------------------------------------ performance

    @staticmethod
    def _ds_info(ds) -> dict[str, Any]:
        return {"path": ds.name, "shape": list(ds.shape), "dtype": str(ds.dtype), "size": int(ds.size),
                "nbytes": int(ds.size * ds.dtype.itemsize), "chunks": list(ds.chunks) if ds.chunks else None,
                "compression": ds.compression}

    def t_hdf5_parallel_scan(self, file_path, pattern="*", max_workers=2):
        workers = min(max(self._int(max_workers, "max_workers", 1), 1), 8)
        with self._read_file(file_path) as f:
            paths = [p for p in self._walk(f, "datasets") if fnmatch.fnmatch(p, str(pattern or "*"))]
            with ThreadPoolExecutor(max_workers=workers) as pool:
                infos = list(pool.map(lambda p: self._ds_info(f[p]), paths))
        return {"file": Path(str(file_path)).name, "pattern": pattern, "workers": workers, "n_datasets": len(infos),
                "total_bytes": sum(i["nbytes"] for i in infos), "datasets": infos}

    def t_hdf5_batch_read(self, file_path, dataset_paths, max_elements=16):
        if isinstance(dataset_paths, str):
            dataset_paths = [dataset_paths]
        if not isinstance(dataset_paths, list) or not dataset_paths:
            raise ToolCallError("dataset_paths must be a non-empty list of dataset paths")
        limit = min(self._int(max_elements, "max_elements", 1), MAX_VALUES)
        results, errors = {}, {}
        with self._read_file(file_path) as f:
            for path in dataset_paths:
                try:
                    ds = self._dataset(f, path)
                except ToolCallError as exc:
                    errors[str(path)] = str(exc)
                    continue
                data, truncated = _values(ds[()], limit) if ds.shape else (_py(ds[()]), False)
                results[ds.name] = {"shape": list(ds.shape), "dtype": str(ds.dtype), "truncated": truncated, "data": data}
        if not results:
            raise ToolCallError("none of the datasets could be read: " + "; ".join(errors.values()))
        return {"results": results, "errors": errors}

    def t_hdf5_stream_data(self, file_path, dataset_path, block_rows=4, max_blocks=8):
        import numpy as np

        rows = self._int(block_rows, "block_rows", 1)
        limit = self._int(max_blocks, "max_blocks", 1)
        with self._read_file(file_path) as f:
            ds = self._dataset(f, dataset_path)
            if not ds.shape or ds.dtype.kind not in "iuf":
                raise ToolCallError(f"{ds.name} is not a numeric array dataset")
            blocks = []
            for start in range(0, ds.shape[0], rows):
                if len(blocks) >= limit:
                    break
                block = np.asarray(ds[start:start + rows], dtype="float64")
                blocks.append({"start": start, "stop": min(start + rows, ds.shape[0]),
                               "min": float(block.min()), "max": float(block.max()), "mean": float(block.mean())})
            return {"dataset": ds.name, "block_rows": rows, "n_blocks": len(blocks),
                    "rows_read": blocks[-1]["stop"] if blocks else 0, "complete": bool(blocks) and blocks[-1]["stop"] >= ds.shape[0],
                    "blocks": blocks}

    def t_hdf5_aggregate_stats(self, file_path, dataset_path, stats=("mean", "min", "max")):
        import numpy as np

        wanted = [stats] if isinstance(stats, str) else list(stats or ["mean", "min", "max"])
        bad = [s for s in wanted if s not in ("mean", "min", "max", "std", "sum", "count")]
        if bad:
            raise ToolCallError(f"unknown statistics {bad} (use mean, min, max, std, sum, count)")
        with self._read_file(file_path) as f:
            ds = self._dataset(f, dataset_path)
            if ds.dtype.kind not in "iuf":
                raise ToolCallError(f"{ds.name} has dtype {ds.dtype}, not numeric")
            total = total_sq = 0.0
            count = 0
            lo, hi = np.inf, -np.inf
            slices = ds.iter_chunks() if ds.chunks else ([slice(None)] if not ds.shape else
                                                         (slice(i, i + 64) for i in range(0, ds.shape[0], 64)))
            n_reads = 0
            for sel in slices:
                block = np.asarray(ds[sel], dtype="float64")
                n_reads += 1
                total += float(block.sum())
                total_sq += float((block ** 2).sum())
                count += int(block.size)
                lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
            name = ds.name
        mean = total / count if count else float("nan")
        values = {"mean": mean, "min": lo, "max": hi, "sum": total, "count": count,
                  "std": float(np.sqrt(max(total_sq / count - mean * mean, 0.0))) if count else float("nan")}
        return {"dataset": name, **{s: values[s] for s in wanted}, "reads": n_reads}

    # ------------------------------------------------------------------ discovery

    def t_analyze_dataset_structure(self, file_path, path="/"):
        import h5py

        with self._read_file(file_path) as f:
            root = f.get(path or "/")
            if root is None:
                raise ToolCallError(f"no group at {path!r}")
            if isinstance(root, h5py.Dataset):
                return {"path": root.name, "groups": [], "datasets": [self._ds_info(root)], "depth": 0}
            groups, datasets = [], []
            base_depth = 0 if root.name == "/" else root.name.count("/")
            depth = 0

            def visit(name, obj):
                nonlocal depth
                depth = max(depth, obj.name.count("/") - base_depth)
                if isinstance(obj, h5py.Dataset):
                    datasets.append({**self._ds_info(obj), "attributes": list(obj.attrs.keys())})
                else:
                    groups.append(obj.name)

            root.visititems(visit)
            return {"path": root.name, "groups": groups, "datasets": datasets, "depth": depth,
                    "n_groups": len(groups), "n_datasets": len(datasets), "attributes": list(root.attrs.keys())}

    def t_find_similar_datasets(self, file_path, dataset_path, top_k=3):
        k = self._int(top_k, "top_k", 1)
        with self._read_file(file_path) as f:
            ref = self._dataset(f, dataset_path)
            ref_attrs = set(ref.attrs.keys())
            scored = []
            for p in self._walk(f, "datasets"):
                if p == ref.name:
                    continue
                ds = f[p]
                score = 2.0 * (ds.ndim == ref.ndim) + 2.0 * (ds.dtype.kind == ref.dtype.kind)
                score += 1.0 * (ds.dtype == ref.dtype) + 2.0 * (ds.shape == ref.shape)
                score += 1.0 * (ds.shape[1:] == ref.shape[1:] and ds.ndim > 1)
                attrs = set(ds.attrs.keys())
                score += len(attrs & ref_attrs) / max(len(attrs | ref_attrs), 1)
                score += 1.0 * (ds.parent.name == ref.parent.name)
                scored.append((-score, p))
        return [p for _, p in sorted(scored)[:k]]

    def t_suggest_next_exploration(self, file_path, current_path="/"):
        import h5py

        with self._read_file(file_path) as f:
            cur = f.get(current_path or "/")
            if cur is None:
                raise ToolCallError(f"no group or dataset at {current_path!r}")
            group = cur if isinstance(cur, h5py.Group) else cur.parent
            out = []
            for key in group.keys():
                obj = group[key]
                if obj.name == cur.name:
                    continue
                if isinstance(obj, h5py.Group):
                    out.append({"path": obj.name, "reason": f"group with {len(obj)} members not explored yet"})
                elif obj.dtype.kind in "iuf" and obj.size > 1:
                    units = obj.attrs.get("units")
                    extra = f" in {_py(units)}" if units is not None else ""
                    out.append({"path": obj.name,
                                "reason": f"numeric dataset {list(obj.shape)}{extra}: summarise it with hdf5_aggregate_stats"})
                else:
                    out.append({"path": obj.name, "reason": f"{obj.dtype} dataset: read it to see labels or ids"})
            if not out and group.name != "/":
                out.append({"path": group.parent.name, "reason": "nothing else here: go back up"})
        return out[:5]

    def t_identify_io_bottlenecks(self, file_path):
        findings = []
        with self._read_file(file_path) as f:
            paths = self._walk(f, "datasets")
            for p in paths:
                ds = f[p]
                nbytes = int(ds.size * ds.dtype.itemsize)
                if ds.chunks is None and nbytes >= 16 * 1024:
                    findings.append({"dataset": p, "issue": f"contiguous layout, {nbytes} bytes",
                                     "suggestion": "store it chunked so partial reads and compression work"})
                if ds.chunks:
                    chunk_bytes = int(ds.dtype.itemsize)
                    for c in ds.chunks:
                        chunk_bytes *= c
                    if chunk_bytes < 1024:
                        n_chunks = 1
                        for s, c in zip(ds.shape, ds.chunks, strict=True):
                            n_chunks *= -(-s // c)
                        findings.append({"dataset": p, "issue": f"tiny chunks ({chunk_bytes} bytes, {n_chunks} chunks)",
                                         "suggestion": "use chunks of 10 KiB to 1 MiB to cut per-chunk overhead"})
                    if ds.compression == "gzip" and (ds.compression_opts or 0) >= 6:
                        findings.append({"dataset": p, "issue": f"gzip level {ds.compression_opts}",
                                         "suggestion": "gzip 1-4 or lzf decompresses much faster for similar size"})
        return {"file": Path(str(file_path)).name, "datasets_checked": len(paths), "n_findings": len(findings),
                "findings": findings}

    def t_optimize_access_pattern(self, file_path, dataset_path, access_pattern):
        if access_pattern not in ("sequential", "random", "row", "column"):
            raise ToolCallError(f"access_pattern must be sequential, random, row or column, got {access_pattern!r}")
        with self._read_file(file_path) as f:
            ds = self._dataset(f, dataset_path)
            shape, chunks = list(ds.shape), list(ds.chunks) if ds.chunks else None
            item = ds.dtype.itemsize
            name = ds.name
        reasons = []
        if not shape:
            return {"dataset": name, "access_pattern": access_pattern, "recommendation": "scalar: read it whole"}
        if access_pattern in ("row", "sequential"):
            rec = [1, *shape[1:]] if access_pattern == "row" else [max(1, min(shape[0], (64 * 1024) // max(item * max(1, _prod(shape[1:])), 1))), *shape[1:]]
            reasons.append("chunks spanning whole rows let each row read touch one chunk")
        elif access_pattern == "column":
            rec = [shape[0], *([1] * (len(shape) - 1))] if len(shape) > 1 else [shape[0]]
            reasons.append("chunks spanning the first axis let a column read touch few chunks")
        else:
            side = max(1, int(round((4096 / item) ** (1 / len(shape)))))
            rec = [min(s, side) for s in shape]
            reasons.append("small square-ish chunks limit the bytes read for scattered element access")
        rec_bytes = item * _prod(rec)
        cache = max(1024 * 1024, rec_bytes * 16)
        if chunks == rec:
            reasons.append("the current chunking already matches this pattern")
        elif chunks is None:
            reasons.append("the dataset is contiguous: rechunk it (e.g. h5repack -l) for this pattern")
        else:
            reasons.append(f"current chunks {chunks} do not match the pattern")
        block = rec[0] if access_pattern in ("row", "sequential") else shape[0]
        return {"dataset": name, "access_pattern": access_pattern, "shape": shape, "current_chunks": chunks,
                "recommended_chunks": rec, "read_block_rows": block, "chunk_cache_bytes": cache, "reasons": reasons}
