"""The real HDF5 executor: runs the 25 HDF5 tools with h5py on the sample files.

Handles are strings ``hdf5://<file>#<path>`` valid while the file is open in the session that
returned them; ``close_file`` really closes the file, and later use of its handles fails.
Files are looked up by name in the executor's data folder only (no other path is opened).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from synthrun.tools import hdf5_fixtures
from synthrun.tools.executors.base import Executor, Session, ToolCallError
from synthrun.tools.executors.hdf5_analysis import MAX_VALUES, AnalysisTools, _py, _values
from synthrun.tools.spec import ToolSpec

HANDLE_PREFIX = "hdf5://"

# Small value menus for numeric knobs, used as generation hints.
_INT_HINTS: dict[str, list[int]] = {
    "max_elements": [8, 16, 32, 64], "top_k": [1, 2, 3, 5], "block_rows": [1, 2, 4, 8],
    "max_blocks": [2, 4, 8], "max_workers": [1, 2, 4], "step": [1, 2],
}


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


class HDF5Session(AnalysisTools, Session):
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

    # ------------------------------------------------------------------ generation hints

    def hints(self, tool: ToolSpec, args: dict[str, Any], want: dict[str, Any] | None = None) -> dict[str, list[Any]]:
        file_name = self.env.get("file") or sorted(self.ex.files)[0]
        inv = hdf5_fixtures.inventory(self.ex.files[file_name])
        out: dict[str, list[Any]] = {}
        for p in tool.parameters:
            if p.type == "file_path":
                out[p.name] = [file_name]
            elif p.name in _INT_HINTS and p.type == "integer":
                out[p.name] = list(_INT_HINTS[p.name])
        out.update(self._tool_hints(tool.name, inv, args, want or {}))
        return out

    def _tool_hints(self, name: str, inv: dict[str, Any], args: dict[str, Any],
                    want: dict[str, Any]) -> dict[str, list[Any]]:
        """Value menus of one tool's own arguments, from the sample file's inventory."""
        datasets = list(inv["datasets"])
        groups = inv["groups"]
        if name == "get_by_path":
            return {"path": self._path_hints(inv, args, want)}
        if name == "read_attribute":
            node = self._safe_path(args.get("handle"))
            names = inv["attributes"].get(node or "/", []) if node else sorted(
                {a for v in inv["attributes"].values() for a in v})
            return {"name": names or ["units"]}
        if name == "read_partial_dataset":
            node = self._safe_path(args.get("dataset"))
            rows = (inv["datasets"].get(node or "", {}).get("shape") or [8])[0] if node else 8
            return {"start": list(range(0, max(1, min(rows, 6)))), "stop": list(range(1, min(rows, 12) + 1))}
        menus: dict[str, tuple[str, list[Any]]] = {
            "hdf5_batch_read": ("dataset_paths", datasets),
            "hdf5_stream_data": ("dataset_path", _numeric(inv)),
            "hdf5_aggregate_stats": ("dataset_path", _numeric(inv)),
            "find_similar_datasets": ("dataset_path", [d for d in datasets if inv["datasets"][d]["shape"]]),
            "optimize_access_pattern": ("dataset_path", [d for d in datasets if inv["datasets"][d]["shape"]]),
            "analyze_dataset_structure": ("path", groups),
            "suggest_next_exploration": ("current_path", [*groups, *datasets]),
            "hdf5_parallel_scan": ("pattern", ["*", *[f"{g.rstrip('/')}/*" for g in groups if g != "/"]]),
        }
        return {menus[name][0]: menus[name][1]} if name in menus else {}

    def _path_hints(self, inv: dict[str, Any], args: dict[str, Any], want: dict[str, Any]) -> list[Any]:
        """``get_by_path``: members under the parent, narrowed to what the next planned call needs."""
        datasets = list(inv["datasets"])
        groups = inv["groups"]
        parent = self._safe_path(args.get("parent")) or "/"
        under = [p for p in [*groups, *datasets] if p != parent and p.startswith(parent.rstrip("/") + "/")]
        want_type = want.get("type") or ""
        if "dataset_handle" in want_type:
            numeric_only = want.get("tool") in ("hdf5_aggregate_stats", "read_partial_dataset")
            under = [p for p in under if p in (_numeric(inv) if numeric_only else datasets)]
        elif "group_handle" in want_type and "node_handle" not in want_type:
            under = [p for p in under if p in groups]
        if want.get("tool") in ("read_attribute", "list_attributes"):
            attributed = [p for p, names in inv["attributes"].items() if names]
            under = [p for p in under if p in attributed] or under
        return under or list(datasets)

    def _safe_path(self, handle: Any) -> str | None:
        try:
            return self._parse(handle)[1]
        except ToolCallError:
            return None


def _numeric(inv: dict[str, Any]) -> list[str]:
    """Datasets of numbers with at least one dimension."""
    return [d for d, i in inv["datasets"].items() if i["numeric"] and i["shape"]]
