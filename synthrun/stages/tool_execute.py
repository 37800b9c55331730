"""Really run every call of every tool-use example and store the results in its steps."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from synthrun.context import StageContext
from synthrun.io import write_jsonl
from synthrun.records import Record, ToolExample
from synthrun.stage import Stage


class ExecuteTools(Stage):
    """Format-check each call (APIGen layer 1), then execute it (layer 2) in a fresh session.

    HDF5 tools run on real h5py files the stage builds in ``<stage_dir>/work/hdf5_files``;
    handles and outputs pass forward through ``$stepN`` references. Tools without a real
    backend run on the simulated executor and are marked ``simulated``. A malformed call is
    not run, nor is anything after a failed call.

    Attributes:
        executors: Executors in order of preference (``hdf5``, ``simulated``).
        strict_handles: Handle parameters must be fed by a ``$stepN`` reference.
        drop_failed: Drop examples whose format check or execution failed (else keep them
            for turn-level curation; the reason is in ``metadata``).
        max_result_chars: Results longer than this (as JSON) are stored as a truncated preview.
    """

    input_type: ClassVar[type[Record]] = ToolExample
    output_type: ClassVar[type[Record]] = ToolExample

    executors: list[str] = Field(default_factory=lambda: ["hdf5", "simulated"])
    strict_handles: bool = True
    drop_failed: bool = False
    max_result_chars: int = Field(default=20000, ge=200)

    def run(self, records: list[ToolExample], ctx: StageContext) -> list[ToolExample]:
        from synthrun.tools.executors import build_engine
        from synthrun.tools.replay import execute_example

        engine = build_engine(self.executors, ctx.stage_dir / "work")
        out, dropped = [], []
        real = simulated = 0
        try:
            for ex in ctx.progress(records, desc="execute"):
                done = execute_example(ex, engine, strict_handles=self.strict_handles,
                                       max_result_chars=self.max_result_chars)
                meta = done.metadata
                real += meta["executed_steps"]["real"]
                simulated += meta["executed_steps"]["simulated"]
                if not meta["format_ok"]:
                    ctx.fail("format_check_failed")
                elif not meta["execution_ok"]:
                    ctx.fail("execution_failed")
                if self.drop_failed and not (meta["format_ok"] and meta["execution_ok"]):
                    dropped.append(done)
                    continue
                out.append(done)
        finally:
            engine.close()
        n = max(len(records), 1)
        ctx.summary.update({
            "examples": len(records),
            "format_ok": sum(bool(e.metadata.get("format_ok")) for e in [*out, *dropped]),
            "execution_ok": sum(bool(e.metadata.get("execution_ok")) for e in [*out, *dropped]),
            "real_steps": real, "simulated_steps": simulated,
        })
        ctx.summary["format_ok_rate"] = round(ctx.summary["format_ok"] / n, 3)
        ctx.summary["execution_ok_rate"] = round(ctx.summary["execution_ok"] / n, 3)
        if dropped:
            write_jsonl(ctx.stage_dir / "dropped.jsonl", dropped)
        return out
