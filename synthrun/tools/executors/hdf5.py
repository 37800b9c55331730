"""The real HDF5 executor: runs the 25 HDF5 tools with h5py on the sample files.

Handles are strings ``hdf5://<file>#<path>`` valid while the file is open in the session that
returned them; ``close_file`` really closes the file, and later use of its handles fails.
Files are looked up by name in the executor's data folder only (no other path is opened).
"""

from __future__ import annotations

import fnmatch
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from synthrun.tools import hdf5_fixtures
from synthrun.tools.executors.base import Executor, Session, ToolCallError
from synthrun.tools.spec import ToolSpec

HANDLE_PREFIX = "hdf5://"
MAX_VALUES = 256

# Small value menus for numeric knobs, used as generation hints.
_INT_HINTS: dict[str, list[int]] = {
    "max_elements": [8, 16, 32, 64], "top_k": [1, 2, 3, 5], "block_rows": [1, 2, 4, 8],
    "max_blocks": [2, 4, 8], "max_workers": [1, 2, 4], "step": [1, 2],
}


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


class HDF5Executor(Executor):
    """Real h5py executor over the sample files in ``data_dir`` (built there when missing).

    Args:
        data_dir: Folder holding (or receiving) the sample HDF5 files; a temp folder when None.
    """

    name: ClassVar[str] = "hdf5"
    real: ClassVar[bool] = True
    TOOLS: ClassVar[frozenset[str]] = frozenset({
        "open_file", "close_file", "get_filename", "get_mode", "get_by_path", "list_keys", "visit",
        "read_full_dataset", "read_partial_dataset", "get_shape", "get_dtype", "get_size", "get_chunks",
        "get_compression", "read_attribute", "list_attributes", "hdf5_parallel_scan", "hdf5_batch_read",
        "hdf5_stream_data", "hdf5_aggregate_stats", "analyze_dataset_structure", "find_similar_datasets",
        "suggest_next_exploration", "identify_io_bottlenecks", "optimize_access_pattern",
    })

    def __init__(self, data_dir: str | Path | None = None):
        self._tmp = None if data_dir else tempfile.mkdtemp(prefix="synthrun-hdf5-")
        self.data_dir = Path(data_dir or self._tmp)
        self.files = hdf5_fixtures.build_fixtures(self.data_dir)

    def supports(self, tool: ToolSpec) -> bool:
        return tool.executor == self.name and tool.name in self.TOOLS

    def environment(self, rng, tools: list[ToolSpec]) -> dict[str, Any]:
        return {"file": rng.choice(sorted(self.files))}

    def describe(self, env: dict[str, Any]) -> str:
        name = env.get("file")
        return hdf5_fixtures.describe(self.files[name]) if name in self.files else ""

    def open(self, env: dict[str, Any]) -> HDF5Session:
        return HDF5Session(self, env)

    def close(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)


class HDF5Session(Session):
    """Open files and handles of one example."""

    executor = "hdf5"

    def __init__(self, executor: HDF5Executor, env: dict[str, Any]):
        self.ex = executor
        self.env = env
        self.open_files: dict[str, Any] = {}
        self._private: str | None = None

    # ------------------------------------------------------------------ helpers

    def _path(self, file_path: Any) -> Path:
        if not isinstance(file_path, str) or not file_path.strip():
            raise ToolCallError("file_path must be a non-empty string")
        name = Path(file_path.strip()).name
        if name not in self.ex.files:
            raise ToolCallError(f"no HDF5 file {file_path!r} (available: {', '.join(sorted(self.ex.files))})")
        return self.ex.files[name]

    def _parse(self, handle: Any) -> tuple[str, str]:
        if not isinstance(handle, str) or not handle.startswith(HANDLE_PREFIX) or "#" not in handle:
            raise ToolCallError(f"{handle!r} is not an HDF5 handle (pass the handle an earlier call returned)")
        file_name, _, path = handle[len(HANDLE_PREFIX):].partition("#")
        return file_name, path or "/"

    def _node(self, handle: Any, kind: str | None = None):
        import h5py

        file_name, path = self._parse(handle)
        f = self.open_files.get(file_name)
        if f is None or not f.id.valid:
            raise ToolCallError(f"handle {handle!r}: file {file_name} is not open (open_file first, or it was closed)")
        obj = f.get(path)
        if obj is None:
            raise ToolCallError(f"handle {handle!r}: no object at {path}")
        if kind == "dataset" and not isinstance(obj, h5py.Dataset):
            raise ToolCallError(f"handle {handle!r} is a group, not a dataset")
        if kind == "group" and not isinstance(obj, h5py.Group):
            raise ToolCallError(f"handle {handle!r} is a dataset, not a group")
        return obj

    @staticmethod
    def _handle(obj) -> dict[str, Any]:
        import h5py

        file_name = Path(obj.file.filename).name
        out: dict[str, Any] = {"handle": f"{HANDLE_PREFIX}{file_name}#{obj.name}", "path": obj.name}
        if isinstance(obj, h5py.Dataset):
            out.update(kind="dataset", shape=list(obj.shape), dtype=str(obj.dtype))
        elif obj.name == "/":
            out.update(kind="file", filename=file_name, mode=obj.file.mode, members=len(obj))
        else:
            out.update(kind="group", members=len(obj))
        return out

    def _read_file(self, file_path: Any):
        import h5py

        return h5py.File(self._path(file_path), "r")

    @staticmethod
    def _dataset(f, path: Any):
        import h5py

        if not isinstance(path, str) or not path:
            raise ToolCallError("dataset_path must be a non-empty string")
        obj = f.get(path)
        if obj is None:
            raise ToolCallError(f"no dataset at {path!r} in {Path(f.filename).name}")
        if not isinstance(obj, h5py.Dataset):
            raise ToolCallError(f"{path!r} is a group, not a dataset")
        return obj

    @staticmethod
    def _walk(group, kind: str = "all") -> list[str]:
        import h5py

        out: list[str] = []

        def visit(name, obj):
            is_ds = isinstance(obj, h5py.Dataset)
            if kind == "all" or (kind == "datasets") == is_ds:
                out.append(obj.name)

        group.visititems(visit)
        return out

    @staticmethod
    def _int(value: Any, name: str, low: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ToolCallError(f"{name} must be an integer, got {value!r}")
        if low is not None and value < low:
            raise ToolCallError(f"{name} must be >= {low}, got {value}")
        return value

    # ------------------------------------------------------------------ contract

    def call(self, tool: ToolSpec, args: dict[str, Any]) -> Any:
        fn = getattr(self, f"t_{tool.name}", None)
        if fn is None:
            raise ToolCallError(f"the HDF5 executor has no tool {tool.name!r}")
        defaults = {p.name: p.default for p in tool.parameters if p.default is not None}
        try:
            return fn(**{**defaults, **args})
        except TypeError as exc:
            raise ToolCallError(f"bad arguments for {tool.name}: {exc}") from None
        except (KeyError, ValueError, OSError) as exc:
            raise ToolCallError(f"{tool.name}: {exc}") from None

    def result_type(self, tool: ToolSpec, result: Any) -> str:
        if isinstance(result, dict) and isinstance(result.get("kind"), str) and "handle" in result:
            return {"file": "file_handle", "group": "group_handle", "dataset": "dataset_handle"}[result["kind"]]
        return tool.returns.type

    def close(self) -> None:
        for f in self.open_files.values():
            try:
                f.close()
            except Exception:  # noqa: BLE001 - already closed
                pass
        self.open_files.clear()
        if self._private:
            shutil.rmtree(self._private, ignore_errors=True)

    # ------------------------------------------------------------------ file operations

    def t_open_file(self, file_path, mode="r"):
        import h5py

        if mode not in ("r", "r+"):
            raise ToolCallError(f"mode must be 'r' or 'r+', got {mode!r}")
        path = self._path(file_path)
        name = path.name
        current = self.open_files.get(name)
        if current is not None and current.id.valid:
            return self._handle(current["/"])
        if mode == "r+":  # write access goes to a private copy so the shared samples never change
            if self._private is None:
                self._private = tempfile.mkdtemp(prefix="synthrun-h5rw-")
            path = Path(shutil.copy(path, Path(self._private) / name))
        f = h5py.File(path, mode)
        self.open_files[name] = f
        return self._handle(f["/"])

    def t_close_file(self, file):
        f = self._node(file, "group").file
        name = Path(f.filename).name
        f.close()
        self.open_files.pop(name, None)
        return True

    def t_get_filename(self, handle):
        return Path(self._node(handle).file.filename).name

    def t_get_mode(self, file):
        return self._node(file, "group").file.mode

    # ------------------------------------------------------------------ navigation

    def t_get_by_path(self, parent, path):
        group = self._node(parent, "group")
        if not isinstance(path, str) or not path:
            raise ToolCallError("path must be a non-empty string")
        obj = group.get(path)
        if obj is None:
            raise ToolCallError(f"no group or dataset at {path!r} under {group.name}")
        return self._handle(obj)

    def t_list_keys(self, group):
        g = self._node(group, "group")
        return [g[k].name for k in g.keys()]

    def t_visit(self, group, kind="all"):
        if kind not in ("all", "datasets", "groups"):
            raise ToolCallError(f"kind must be all, datasets or groups, got {kind!r}")
        return self._walk(self._node(group, "group"), kind)

    # ------------------------------------------------------------------ datasets

    def t_read_full_dataset(self, dataset, max_elements=64):
        ds = self._node(dataset, "dataset")
        limit = min(self._int(max_elements, "max_elements", 1), MAX_VALUES)
        data, truncated = _values(ds[()], limit) if ds.shape else (_py(ds[()]), False)
        return {"path": ds.name, "shape": list(ds.shape), "dtype": str(ds.dtype), "n_elements": int(ds.size),
                "truncated": truncated, "data": data}

    def t_read_partial_dataset(self, dataset, start, stop, step=1):
        ds = self._node(dataset, "dataset")
        if not ds.shape:
            raise ToolCallError(f"{ds.name} is a scalar dataset; use read_full_dataset")
        n = ds.shape[0]
        start, stop, step = self._int(start, "start", 0), self._int(stop, "stop", 1), self._int(step, "step", 1)
        if start >= n:
            raise ToolCallError(f"start={start} is past the end of {ds.name} (first axis has {n} rows)")
        if stop <= start:
            raise ToolCallError(f"stop ({stop}) must be greater than start ({start})")
        stop = min(stop, n)
        arr = ds[start:stop:step]
        data, truncated = _values(arr, MAX_VALUES)
        return {"path": ds.name, "selection": f"[{start}:{stop}:{step}]", "shape": list(arr.shape),
                "dtype": str(ds.dtype), "truncated": truncated, "data": data}

    def t_get_shape(self, dataset):
        return list(self._node(dataset, "dataset").shape)

    def t_get_dtype(self, dataset):
        return str(self._node(dataset, "dataset").dtype)

    def t_get_size(self, dataset):
        return int(self._node(dataset, "dataset").size)

    def t_get_chunks(self, dataset):
        chunks = self._node(dataset, "dataset").chunks
        return list(chunks) if chunks else None

    def t_get_compression(self, dataset):
        ds = self._node(dataset, "dataset")
        return {"compression": ds.compression, "compression_opts": _py(ds.compression_opts),
                "shuffle": bool(ds.shuffle), "chunks": list(ds.chunks) if ds.chunks else None}

    # ------------------------------------------------------------------ attributes

    def t_read_attribute(self, handle, name):
        obj = self._node(handle)
        if name not in obj.attrs:
            have = ", ".join(obj.attrs.keys()) or "none"
            raise ToolCallError(f"{obj.name} has no attribute {name!r} (attributes: {have})")
        return _py(obj.attrs[name])

    def t_list_attributes(self, handle):
        return list(self._node(handle).attrs.keys())

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

    # ------------------------------------------------------------------ generation hints

    def hints(self, tool: ToolSpec, args: dict[str, Any], want: dict[str, Any] | None = None) -> dict[str, list[Any]]:
        file_name = self.env.get("file") or sorted(self.ex.files)[0]
        inv = hdf5_fixtures.inventory(self.ex.files[file_name])
        datasets = list(inv["datasets"])
        numeric = [d for d, i in inv["datasets"].items() if i["numeric"] and i["shape"]]
        groups = inv["groups"]
        attributed = [p for p, names in inv["attributes"].items() if names]
        out: dict[str, list[Any]] = {}
        for p in tool.parameters:
            if p.type == "file_path":
                out[p.name] = [file_name]
            elif p.name in _INT_HINTS and p.type == "integer":
                out[p.name] = list(_INT_HINTS[p.name])
        name = tool.name
        want_type = (want or {}).get("type") or ""
        if name == "get_by_path":
            parent = self._safe_path(args.get("parent")) or "/"
            under = [p for p in [*groups, *datasets] if p != parent and p.startswith(parent.rstrip("/") + "/")]
            if "dataset_handle" in want_type:
                numeric_only = (want or {}).get("tool") in ("hdf5_aggregate_stats", "read_partial_dataset")
                under = [p for p in under if p in (numeric if numeric_only else datasets)]
            elif "group_handle" in want_type and "node_handle" not in want_type:
                under = [p for p in under if p in groups]
            if (want or {}).get("tool") in ("read_attribute", "list_attributes"):
                under = [p for p in under if p in attributed] or under
            out["path"] = under or [p for p in datasets]
        elif name == "read_attribute":
            node = self._safe_path(args.get("handle"))
            names = inv["attributes"].get(node or "/", []) if node else sorted({a for v in inv["attributes"].values() for a in v})
            out["name"] = names or ["units"]
        elif name == "hdf5_batch_read":
            out["dataset_paths"] = datasets
        elif name in ("hdf5_stream_data", "hdf5_aggregate_stats"):
            out["dataset_path"] = numeric
        elif name in ("find_similar_datasets", "optimize_access_pattern"):
            out["dataset_path"] = [d for d in datasets if inv["datasets"][d]["shape"]]
        elif name == "analyze_dataset_structure":
            out["path"] = groups
        elif name == "suggest_next_exploration":
            out["current_path"] = [*groups, *datasets]
        elif name == "hdf5_parallel_scan":
            out["pattern"] = ["*", *[f"{g.rstrip('/')}/*" for g in groups if g != "/"]]
        elif name == "read_partial_dataset":
            node = self._safe_path(args.get("dataset"))
            rows = (inv["datasets"].get(node or "", {}).get("shape") or [8])[0] if node else 8
            out["start"] = list(range(0, max(1, min(rows, 6))))
            out["stop"] = list(range(1, min(rows, 12) + 1))
        return out

    def _safe_path(self, handle: Any) -> str | None:
        try:
            return self._parse(handle)[1]
        except ToolCallError:
            return None


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out
