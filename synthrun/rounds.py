"""Row targets: ``target_rows: N`` runs a declared span of stages in rounds until N rows pass.

A recipe declares the span (``rounds: {from: generate, to: curate, max_rounds: 6}``); with
``target_rows`` set, the runner feeds the ``from`` stage a slice of the records the stage before it
made (chunks not used by an earlier round), runs every stage of the span on it, and counts the
rows the ``to`` stage kept. The first round takes ``target_rows`` inputs (one kept row per input
assumed); each later round sizes itself from the yield so far (rows kept per input used, plus
10%). When every input was used, later rounds take them again as new ones (``rounds.reseed``,
default true): ids get ``~r1``, ``~r2`` ... and the span's stages run with ``seed + 1``, ``+ 2`` ...,
so the requests differ from the earlier ones (a round never crosses the end of the inputs).
Rounds stop when N rows passed (the first N, in round order, go on: exactly N), when the inputs
are used up (``reseed: false``), after ``max_rounds``, or when the budget ends (``budget_exhausted``).

Each round writes ``NN_stage/rounds/RR/`` (data, summary, ``_SUCCESS``): the same command resumes
at the round and stage it stopped in, and answered LLM calls come from the cache. The span's
stage folders then hold all rounds' records (the ``to`` stage: the N kept). ``metrics.json``
gets ``rounds``: per-round inputs, rows made and kept, yield and cost, and the cost per kept row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthrun.budget import guard_for, stop_at_budget
from synthrun.stage import StageError

log = logging.getLogger("synthrun")
DEFAULT_MAX_ROUNDS = 5
MARGIN = 1.1


@dataclass
class RoundsSpec:
    """A checked ``rounds`` span and target."""

    first: str
    last: str
    target: int
    max_rounds: int = DEFAULT_MAX_ROUNDS
    names: tuple[str, ...] = ()
    reseed: bool = True


def _whole(value: Any, where: str, minimum: int = 1) -> int:
    try:
        number = int(value)
        ok = not isinstance(value, bool) and float(value) == number and number >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise StageError(f"{where}={value!r}: must be a whole number >= {minimum}")
    return number


def rounds_env(cfg: Any, stages: list[tuple[str, Any]], run_dir: Path, run_id: str, metrics: Any, folder: Any,
               budget: Any, cache_path: Path | None, prompts: Any,
               show_progress: bool) -> tuple[RoundsSpec | None, dict[str, Any]]:
    """The runner's rounds span (None without ``target_rows``) and what its stages need to run."""
    spec = parse_rounds(cfg, [n for n, _ in stages])
    return spec, {"cfg": cfg, "stages": stages, "run_dir": run_dir, "run_id": run_id, "metrics": metrics,
                  "folder": folder, "budget": budget, "cache_path": cache_path, "prompts": prompts,
                  "show_progress": show_progress}


def rounds_step(spec: RoundsSpec | None, env: dict[str, Any], name: str, records: Iterable[Any], upstream: str,
                prev: str) -> tuple[list[Any], str, str] | None:
    """None outside a rounds span; the span's result at its first stage; unchanged at its other stages."""
    if spec is None or name not in spec.names:
        return None
    if name != spec.first:
        return list(records), upstream, prev
    if not isinstance(records, list):  # a large upstream output streamed from disk (synthrun.shards)
        stage = dict(env["stages"])[name]
        records = [stage.input_type.model_validate(row) for row in records]
    return run_rounds(spec, env, records, upstream, prev)


def parse_rounds(cfg: Any, names: list[str]) -> RoundsSpec | None:
    """The rounds span when ``target_rows`` is set (one-line :class:`StageError` when it is bad), else None."""
    target = cfg.get("target_rows")
    if target is None:
        return None
    target = _whole(target, "target_rows")
    span = cfg.get("rounds")
    if not span or not span.get("from") or not span.get("to"):
        raise StageError("target_rows needs the recipe to declare the stages it repeats, e.g. "
                         "`rounds: {from: generate, to: curate}` (the qa recipe does)")
    first, last = str(span.get("from")), str(span.get("to"))
    for key, name in (("from", first), ("to", last)):
        if name not in names:
            raise StageError(f"rounds.{key}={name!r}: no such stage in this recipe ({', '.join(names)})")
    if names.index(first) == 0:
        raise StageError(f"rounds.from={first!r}: the first stage has no input to take rounds from")
    if names.index(last) < names.index(first):
        raise StageError(f"rounds: '{last}' comes before '{first}' in the stages list")
    max_rounds = _whole(span.get("max_rounds", DEFAULT_MAX_ROUNDS), "rounds.max_rounds")
    reseed = span.get("reseed", True)
    if not isinstance(reseed, bool):
        raise StageError(f"rounds.reseed={reseed!r}: must be true or false")
    return RoundsSpec(first, last, target, max_rounds, tuple(names[names.index(first): names.index(last) + 1]),
                      reseed)


def next_size(target: int, kept: int, used: int, remaining: int) -> int:
    """Inputs for the next round: the rows still needed over the yield so far (plus a margin)."""
    need = target - kept
    if need <= 0 or remaining <= 0:
        return 0
    if used == 0:
        size = need
    else:
        per_input = kept / used
        size = math.ceil(need / per_input * MARGIN) if per_input > 0 else used * 2
    return max(1, min(remaining, size))


def take(records: list[Any], used: int, size: int) -> tuple[list[Any], int]:
    """``size`` inputs from position ``used`` of the endless cycle over ``records`` (never crossing a cycle's
    end) and the cycle they belong to. Cycle ``c`` > 0 re-uses the inputs as new ones: ids get ``~rC``
    and the span's stages run with ``seed + C``, so their requests (and answers) are new."""
    cycle, start = divmod(used, len(records))
    batch = records[start:start + min(size, len(records) - start)]
    if cycle:
        batch = [r.model_copy(update={"id": f"{r.id}~r{cycle}"}) for r in batch]
    return batch, cycle


def round_fingerprint(base: str, inputs: list[Any]) -> str:
    """A round's upstream fingerprint: the span's config chain and the ids of its inputs."""
    ids = [str(getattr(r, "id", "") or (r.get("id") if isinstance(r, dict) else "")) for r in inputs]
    return hashlib.sha256(json.dumps([base, ids]).encode()).hexdigest()[:20]


def read_rounds(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / "rounds.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------- running rounds


@dataclass
class SpanTotals:
    """One span stage's records and counters summed over the rounds."""

    outputs: list[Any]
    metrics: Any
    fingerprints: list[str]


def _add_metrics(total: Any, sm: Any) -> None:
    for key in ("rows_in", "rows_out", "llm_calls", "cache_hits", "tokens_in", "tokens_out"):
        setattr(total, key, getattr(total, key) + getattr(sm, key))
    total.cost_usd = round(total.cost_usd + sm.cost_usd, 6)
    total.wall_time_s = round(total.wall_time_s + sm.wall_time_s, 3)
    for key in ("failures", "llm_failures"):
        merged = getattr(total, key)
        for reason, n in getattr(sm, key).items():
            merged[reason] = merged.get(reason, 0) + n


def _stage_metrics(name: str, stage: Any, env: dict[str, Any]) -> Any:
    from synthrun.metrics import StageMetrics
    from synthrun.records import Record

    produces = stage.source or (stage.input_type is not stage.output_type and stage.output_type is not Record)
    return StageMetrics(name=name, target=str(env["cfg"][name]._target_), enabled=stage.enabled,
                        produces=produces)


def _run_stage(env: dict[str, Any], name: str, stage: Any, records: list[Any], upstream: str, prev: str,
               stage_dir: Path, cycle: int = 0) -> tuple[list[Any], str, Any]:
    """One span stage on one round's records (skipped when its round marker matches)."""
    import time

    from synthrun import runner as R
    from synthrun.context import StageContext
    from synthrun.io import atomic_write_text, write_json, write_jsonl
    from synthrun.metrics import StageMetrics, mean_rating

    cfg = env["cfg"]
    provider = R._provider_for(cfg, stage)
    fp = R._fingerprint(cfg[name], provider, upstream)
    marker = stage_dir / R.MARKER
    if marker.is_file() and marker.read_text().strip() == fp:
        summary = json.loads((stage_dir / "summary.json").read_text())
        return (R._load_output(stage_dir / "data.jsonl", stage), R._chain(fp, stage_dir),
                StageMetrics.model_validate(summary["metrics"]))
    stage_dir.mkdir(parents=True, exist_ok=True)
    sm = _stage_metrics(name, stage, env)
    t0 = time.perf_counter()
    inputs = R._coerce(records, stage, name, prev)
    ctx = StageContext(name=name, run_id=env["run_id"], run_dir=env["run_dir"], stage_dir=stage_dir,
                       provider=provider, cache_path=env["cache_path"], prompts=env["prompts"],
                       seed=int(cfg.get("seed", 0)) + cycle, show_progress=env["show_progress"],
                       budget=guard_for(env["budget"], name))
    outputs = list(stage.run(inputs, ctx)) if stage.enabled else list(inputs)
    st = ctx.stats
    sm.rows_in, sm.rows_out, sm.mean_rating = len(inputs), len(outputs), mean_rating(outputs)
    sm.llm_calls, sm.cache_hits = st.calls, st.cache_hits
    sm.tokens_in, sm.tokens_out, sm.cost_usd = st.prompt_tokens, st.completion_tokens, round(st.cost_usd, 6)
    sm.failures, sm.llm_failures = dict(ctx.failures), dict(st.failures)
    sm.wall_time_s = round(time.perf_counter() - t0, 3)
    stop_at_budget(name, env["budget"], env["folder"], stage_dir, outputs, sm, ctx, fp, env["metrics"])
    R._check_llm_reached(name, sm, provider, env["metrics"])
    lost = {k: n for k, n in st.failures.items() if k in R.RETRYABLE_FAILURES}
    if lost and sum(lost.values()) > R._failure_limit(cfg, name) * max(1, sm.llm_calls):
        R._write_partial(env["folder"], stage_dir, outputs, sm, ctx, fp, lost, env["metrics"])
        raise R.IncompleteStage(f"stage '{name}' is incomplete in round {stage_dir.name}: {sum(lost.values())} of "
                                f"{sm.llm_calls} LLM calls failed on the provider side; the answers received are "
                                f"cached: give the same command again to retry only the failed calls")
    sm.status = "accepted" if lost else "done"
    env["folder"].claim()
    marker.unlink(missing_ok=True)
    write_jsonl(stage_dir / "data.jsonl", outputs)
    write_json(stage_dir / "summary.json", {"metrics": sm.model_dump(), "details": ctx.summary})
    (stage_dir / R.PARTIAL).unlink(missing_ok=True)
    atomic_write_text(marker, fp + "\n")
    return outputs, R._chain(fp, stage_dir), sm


def _summary(spec: RoundsSpec, history: list[dict[str, Any]], kept: int, stopped: str) -> dict[str, Any]:
    cost = sum(r["cost_usd"] for r in history)
    return {"target_rows": spec.target, "rows": min(kept, spec.target), "surplus": max(0, kept - spec.target),
            "target_reached": kept >= spec.target, "stopped": stopped, "rounds": history,
            "cost_usd": round(cost, 6), "cost_per_kept_row": round(cost / min(kept, spec.target), 8) if kept else None}


def _write_span(env: dict[str, Any], span: list[tuple[int, str, Any]], totals: dict[str, SpanTotals],
                summary: dict[str, Any], upstream: str) -> str:
    """Each span stage's folder: all rounds' records (the last stage: the first ``target_rows``)."""
    from synthrun import runner as R
    from synthrun.io import atomic_write_text, write_json, write_jsonl

    for index, name, _stage in span:
        stage_dir = env["run_dir"] / f"{index:02d}_{name}"
        t = totals[name]
        fp = hashlib.sha256(json.dumps([upstream, t.fingerprints, summary["target_rows"]]).encode()).hexdigest()[:20]
        marker = stage_dir / R.MARKER
        if not (marker.is_file() and marker.read_text().strip() == fp):
            env["folder"].claim()
            marker.unlink(missing_ok=True)
            write_jsonl(stage_dir / "data.jsonl", t.outputs)
            write_json(stage_dir / "summary.json", {"metrics": t.metrics.model_dump(), "details": {"rounds": summary}})
            atomic_write_text(marker, fp + "\n")
        env["metrics"].stages.append(t.metrics)
        upstream = R._chain(fp, stage_dir)
    return upstream


def run_rounds(spec: RoundsSpec, env: dict[str, Any], records: list[Any], upstream: str,
               prev: str) -> tuple[list[Any], str, str]:
    """Run the span in rounds until ``spec.target`` rows pass; return (rows, upstream, last stage name)."""
    span = [(i, n, s) for i, (n, s) in enumerate(env["stages"], 1) if n in spec.names]
    totals = {n: SpanTotals([], _stage_metrics(n, s, env), []) for _, n, s in span}
    history: list[dict[str, Any]] = []
    kept: list[Any] = []
    used, stopped = 0, "max_rounds"
    for number in range(1, spec.max_rounds + 1):
        remaining = len(records) * (number + 1 if spec.reseed else 1) - used
        size = next_size(spec.target, len(kept), used, remaining)
        if size == 0:
            stopped = "target_rows" if len(kept) >= spec.target else "inputs_used_up"
            break
        batch, cycle = take(records, used, size)
        used += len(batch)
        recs, up, pv = batch, round_fingerprint(upstream, batch), prev
        row: dict[str, Any] = {"round": number, "inputs": len(batch), "cycle": cycle, "calls": 0, "cost_usd": 0.0}
        for index, name, stage in span:
            stage_dir = env["run_dir"] / f"{index:02d}_{name}" / "rounds" / f"{number:02d}"
            log.info("round %d, stage %s: %d records in", number, name, len(recs))
            recs, up, sm = _run_stage(env, name, stage, recs, up, pv, stage_dir, cycle)
            pv = name
            totals[name].outputs.extend(recs)
            totals[name].fingerprints.append(up)
            _add_metrics(totals[name].metrics, sm)
            row["calls"] += sm.llm_calls
            row["cost_usd"] = round(row["cost_usd"] + sm.cost_usd, 6)
            row.setdefault("made", sm.rows_out)
        row["kept"] = len(recs)
        row["yield"] = round(len(recs) / len(batch), 4) if batch else None
        history.append(row)
        kept.extend(recs)
        env["metrics"].rounds = _summary(spec, history, len(kept), "running")
        if len(kept) >= spec.target:
            stopped = "target_rows"
            break
    summary = _summary(spec, history, len(kept), stopped)
    env["metrics"].rounds = summary
    totals[spec.last].outputs = kept[: spec.target]
    totals[spec.last].metrics.rows_out = len(totals[spec.last].outputs)
    for t in totals.values():
        t.metrics.status = "done"
        t.metrics.retention = round(t.metrics.rows_out / t.metrics.rows_in, 4) if t.metrics.rows_in else None
    yields = ", ".join(f"{r['yield']:.2f}" for r in history if r["yield"] is not None)
    per_row = summary["cost_per_kept_row"]
    message = (f"rounds: {len(history)} (rows kept per input: {yields}); {summary['rows']} of target_rows="
               f"{spec.target} rows" + (f"; ${per_row:.6f} per kept row" if per_row is not None else ""))
    if summary["target_reached"]:
        log.info(message)
    else:
        log.warning("%s; target not reached (%s)", message, stopped.replace("_", " "))
    return totals[spec.last].outputs, _write_span(env, span, totals, summary, upstream), spec.last
