"""Streaming shards: a per-record stage runs on ``shard_size`` records at a time and resumes per shard.

A stage that works record by record (``Stage.needs_all_records`` False, the default) and gets more
input records than ``shard_size`` (run setting, default 1,000) is called once per shard with the
same ``run(records, ctx)`` contract. While it runs, its folder holds::

    NN_stage/shards/00042.jsonl   the shard's output records (written atomically)
    NN_stage/shards/00042.done    then its marker: fingerprint, shard size, counts, LLM counters, summary
    NN_stage/shards/00042.d/      the shard's side files (``ctx.stage_dir`` while the shard runs)

A killed run loses at most the shards in progress: the same command skips every shard with a
matching marker (a shard that lost LLM calls to provider failures is done again; the cache answers
the calls it had). When all shards are done they are concatenated in order into ``data.jsonl`` (the
file everything downstream reads, byte for byte what one unsharded call would write), side
``*.jsonl`` files into the stage folder, and ``shards/`` is removed with the stage's ``_SUCCESS``.

Memory stays bounded by the shard size: input shards are read lazily from the previous stage's
``data.jsonl`` (:class:`RecordFile`), and a stage that needs all its records at once gets them as
:class:`CompactRecords` (their JSON text, decoded on access) when there are more than a shard, or, if
it declares ``streams_input`` (dedup), as a :class:`RecordStream` it reads in passes (nothing held).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from synthrun.recordfile import (
    DATA,
    SHARDS,
    CompactRecords,
    RecordFile,
    RecordStream,
    atomic_lines,
    cleanup,
    collect,
    compact,
    concat,
    count_lines,
    file_digest,
    iter_shards,
    keep,
    load,
    misfit,
    save,
    to_line,
)
from synthrun.stage import Stage, StageError

if TYPE_CHECKING:
    from synthrun.context import StageContext
    from synthrun.prompts import PromptLibrary

log = logging.getLogger("synthrun")
DEFAULT_SHARD_SIZE = 1000
__all__ = ["CompactRecords", "RecordFile", "RecordStream", "cleanup", "collect", "compact", "count_lines", "file_digest", "keep",
           "load", "save"]


def shard_size_of(cfg: Any) -> int:
    """The run's ``shard_size`` (records per shard), checked: a whole number >= 1."""
    value = cfg.get("shard_size", DEFAULT_SHARD_SIZE) if cfg is not None else DEFAULT_SHARD_SIZE
    if value is None:
        return DEFAULT_SHARD_SIZE
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StageError(f"shard_size={value!r}: must be a whole number of records >= 1 "
                         f"(e.g. shard_size={DEFAULT_SHARD_SIZE})")
    return value


# --------------------------------------------------------------------------- one shard


@dataclass
class ShardJob:
    """Everything a worker needs to run shards of one stage (picklable: sent to Ray workers)."""

    stage: Stage
    name: str
    prev: str
    run_id: str
    run_dir: Path
    stage_dir: Path
    provider: dict[str, Any]
    cache_path: Path | None
    prompts: PromptLibrary
    seed: int
    fingerprint: str
    size: int
    retryable: frozenset[str] = frozenset()
    budget: Any = None  # a spending guard usable in a worker (executor=ray: the budget actor's), or None

    def context(self) -> StageContext:
        from synthrun.context import StageContext

        return StageContext(name=self.name, run_id=self.run_id, run_dir=self.run_dir, stage_dir=self.stage_dir,
                            provider=self.provider, cache_path=self.cache_path, prompts=self.prompts,
                            seed=self.seed, show_progress=False, budget=self.budget)


@dataclass
class ShardResult:
    """One finished shard: its output lines and what it counted."""

    index: int
    lines: list[str]
    rows_in: int
    stats: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    lost: int = 0
    halted: str | None = None
    halt_message: str = ""

    def marker(self, job: ShardJob) -> dict[str, Any]:
        return {"fingerprint": job.fingerprint, "size": job.size, "rows_in": self.rows_in,
                "rows_out": len(self.lines), "lost": self.lost, "stats": self.stats, "failures": self.failures,
                "summary": self.summary}


_COUNTERS = ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "cost_usd", "retries")


def _stats_of(ctx: StageContext) -> dict[str, Any]:
    st = ctx.stats
    out: dict[str, Any] = {k: getattr(st, k) for k in _COUNTERS}
    out["failures"] = dict(st.failures)
    return out


def _minus(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, dict):
            diff = {k: v - before.get(key, {}).get(k, 0) for k, v in value.items()}
            out[key] = {k: v for k, v in diff.items() if v}
        else:
            out[key] = value - before.get(key, 0)
    return out


def add_stats(ctx: StageContext, stats: dict[str, Any], failures: dict[str, int]) -> None:
    """Add a shard's counters (run elsewhere, or in an earlier attempt) to the stage's."""
    st = ctx.stats
    for key in _COUNTERS:
        setattr(st, key, getattr(st, key) + stats.get(key, 0))
    for reason, n in (stats.get("failures") or {}).items():
        st.failures[reason] = st.failures.get(reason, 0) + n
    for reason, n in failures.items():
        ctx.failures[reason] = ctx.failures.get(reason, 0) + n


def side_dir(stage_dir: Path, index: int) -> Path:
    return stage_dir / SHARDS / f"{index:05d}.d"


def run_shard(job: ShardJob, index: int, lines: list[str], ctx: StageContext | None = None) -> ShardResult:
    """Run the stage on one shard of JSON lines (in this process or a worker); nothing is written here
    except the stage's own side files, which go to the shard's side folder."""
    ctx = ctx if ctx is not None else job.context()
    home = ctx.stage_dir
    ctx.stage_dir, ctx.summary = side_dir(job.stage_dir, index), {}
    ctx.stage_dir.mkdir(parents=True, exist_ok=True)
    stats0, failures0 = _stats_of(ctx), dict(ctx.failures)
    inputs = []
    want = job.stage.input_type
    for i, line in enumerate(lines):
        try:
            inputs.append(want.model_validate_json(line))
        except ValidationError as exc:
            raise misfit(job.stage, job.name, job.prev, line, index * job.size + i, exc) from None
    try:
        outputs = job.stage.run(inputs, ctx)
        out_lines = [to_line(r) for r in outputs]
    finally:
        summary, ctx.stage_dir = ctx.summary, home
    stats = _minus(_stats_of(ctx), stats0)
    failures = {k: n - failures0.get(k, 0) for k, n in ctx.failures.items() if n - failures0.get(k, 0)}
    lost = sum(n for reason, n in stats["failures"].items() if reason in job.retryable)
    return ShardResult(index=index, lines=out_lines, rows_in=len(lines), stats=stats, failures=failures,
                       summary=summary, lost=lost, halted=ctx.stats.halted, halt_message=ctx.stats.halt_message)


# --------------------------------------------------------------------------- a sharded stage


class Executor(Protocol):
    """Runs shards somewhere (this process, Ray workers) and yields their results as they finish."""

    in_process: bool

    def run_shards(self, job: ShardJob, shards: Iterator[tuple[int, list[str]]],
                   ctx: StageContext) -> Iterator[ShardResult]: ...


def wants_shards(stage: Stage, records: Sequence[Any] | RecordFile, size: int) -> bool:
    """True for an enabled per-record stage whose input is bigger than one shard."""
    return (stage.enabled and not stage.source and not stage.needs_all_records
            and len(records) > size)


def _done(shard_dir: Path, index: int, job: ShardJob) -> dict[str, Any] | None:
    """The marker of a shard finished by an earlier attempt with the same config and shard size."""
    try:
        marker = json.loads((shard_dir / f"{index:05d}.done").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = (marker.get("fingerprint") == job.fingerprint and marker.get("size") == job.size
          and not marker.get("lost") and (shard_dir / f"{index:05d}.jsonl").is_file())
    return marker if ok else None


def _merge(into: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """Summaries of shards: counts add up, nested counts too, anything else is the last shard's."""
    for key, value in part.items():
        old = into.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(old, int):
            into[key] = old + value
        elif isinstance(value, dict) and isinstance(old, dict):
            into[key] = _merge(dict(old), value)
        else:
            into[key] = value
    return into


def _side_files(stage_dir: Path, count: int) -> None:
    """Bring the shards' side files into the stage folder: JSONL concatenated in order, others the last."""
    names: dict[Path, list[Path]] = {}
    for index in range(count):
        folder = side_dir(stage_dir, index)
        if folder.is_dir():
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                names.setdefault(path.relative_to(folder), []).append(path)
    for rel, parts in names.items():
        if rel.suffix == ".jsonl":
            concat(parts, stage_dir / rel)
        else:
            (stage_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(parts[-1], stage_dir / rel)


def _paths_home(value: Any, shard_root: str, home: str) -> Any:
    """Side-file paths named in a summary point at the stage folder, not at a shard's."""
    if isinstance(value, str) and shard_root in value:
        return re.sub(re.escape(shard_root) + r"/\d{5}\.d", home, value)
    if isinstance(value, dict):
        return {k: _paths_home(v, shard_root, home) for k, v in value.items()}
    return value


@dataclass
class _Progress:
    shards: int = 0
    resumed: int = 0
    rows_in: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False


def _record(job: ShardJob, shard_dir: Path, result: ShardResult, state: _Progress) -> None:
    """Write a finished shard (data first, then its marker, each atomically)."""
    atomic_lines(shard_dir / f"{result.index:05d}.jsonl", result.lines)
    text = json.dumps(result.marker(job), ensure_ascii=False, default=str)
    atomic_lines(shard_dir / f"{result.index:05d}.done", [text])
    state.summary = _merge(state.summary, result.summary)
    state.rows_in += result.rows_in


def run_sharded(job: ShardJob, records: Sequence[Any] | RecordFile, ctx: StageContext,
                executor: Executor) -> tuple[int, RecordFile]:
    """Run a per-record stage shard by shard; return (rows in, its outputs in a stream file)."""
    shard_dir = job.stage_dir / SHARDS
    shard_dir.mkdir(parents=True, exist_ok=True)
    state = _Progress()

    def todo() -> Iterator[tuple[int, list[str]]]:
        for index, lines in enumerate(iter_shards(records, job.size)):
            state.shards = index + 1
            if state.stopped:
                return
            marker = _done(shard_dir, index, job)
            if marker is None:
                yield index, lines
                continue
            state.resumed += 1
            state.rows_in += int(marker.get("rows_in") or 0)
            state.summary = _merge(state.summary, marker.get("summary") or {})
            add_stats(ctx, marker.get("stats") or {}, marker.get("failures") or {})

    log.info("stage %s: %d records in shards of %d (%s executor)", job.name, len(records), job.size,
             type(executor).__name__)
    total = -(-len(records) // job.size)
    for result in executor.run_shards(job, todo(), ctx):
        if not executor.in_process:
            add_stats(ctx, result.stats, result.failures)
            if result.halted and not ctx.stats.halted:
                ctx.stats.halted, ctx.stats.halt_message = result.halted, result.halt_message
        _record(job, shard_dir, result, state)
        log.info("stage %s: shard %d of %d done (%d records in, %d out)", job.name, result.index + 1, total,
                 result.rows_in, len(result.lines))
        if ctx.stats.halted in ("storage", "budget_exhausted"):
            state.stopped = True  # a full cache disk or a spent budget: keep what is done and stop
    if state.resumed:
        log.info("stage %s: %d of %d shards were already done, resumed after them", job.name, state.resumed,
                 state.shards)
    parts = [shard_dir / f"{i:05d}.jsonl" for i in range(state.shards)]
    stream = job.stage_dir / f".{DATA}.stream"
    concat([p for p in parts if p.is_file()], stream)
    _side_files(job.stage_dir, state.shards)
    ctx.summary.update(_paths_home(state.summary, str(shard_dir), str(job.stage_dir)))
    ctx.summary["shards"] = {"count": state.shards, "size": job.size, "resumed": state.resumed}
    return state.rows_in, RecordFile(stream)
