"""Executors: the real HDF5 one (h5py) and a simulated one for tools without a backend.

:func:`build_engine` turns executor names from a recipe (``["hdf5", "simulated"]``) into an
:class:`~synthrun.tools.executors.base.ExecutionEngine`; each tool runs on the first that supports it.
"""

from __future__ import annotations

from pathlib import Path

from synthrun.tools.executors.base import (
    REF_RE,
    ExecutionEngine,
    Executor,
    Session,
    StepOutcome,
    ToolCallError,
    Trace,
    parse_ref,
    wire_value,
)

EXECUTORS = ("hdf5", "simulated")

__all__ = ["EXECUTORS", "REF_RE", "ExecutionEngine", "Executor", "Session", "StepOutcome", "ToolCallError",
           "Trace", "build_engine", "make_executor", "parse_ref", "wire_value"]


def make_executor(name: str, workdir: str | Path | None = None) -> Executor:
    """One executor by name; ``workdir`` is where it may keep files (the HDF5 samples)."""
    from synthrun.errors import StageError

    if name == "hdf5":
        from synthrun.tools.executors.hdf5 import HDF5Executor

        return HDF5Executor(Path(workdir) / "hdf5_files" if workdir else None)
    if name == "simulated":
        from synthrun.tools.executors.simulated import SimulatedExecutor

        return SimulatedExecutor()
    raise StageError(f"unknown executor {name!r} (use {', '.join(EXECUTORS)})")


def build_engine(names: list[str], workdir: str | Path | None = None) -> ExecutionEngine:
    """An engine with the named executors, in order of preference."""
    return ExecutionEngine([make_executor(n, workdir) for n in names])
