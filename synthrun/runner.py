"""Runs a composed recipe: instantiate every stage, then run them in order with resume.

Each stage writes ``NN_name/data.jsonl``, ``NN_name/summary.json`` and last a
``_SUCCESS`` marker holding a fingerprint of the stage's config and of everything
upstream. Running the same command again skips stages whose marker matches;
an interrupted stage runs again, and the LLM cache answers every call it had
already made, so no work is paid for twice.

A stage whose LLM calls failed on the provider's side (connection, timeout, 5xx, 429 after
retries, an open circuit) is *incomplete*: it writes its data and a ``_PARTIAL`` marker with
the counts instead of ``_SUCCESS`` and the run stops there (exit 3, ``status: partial``). The
same command retries exactly the failed calls (the others come from the cache), unless the
user accepts the loss (``accept_failures=true`` or ``+STAGE.max_failure_rate=0.05``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pydantic import ValidationError

from synthrun import executors, shards
from synthrun.budget import guard_for, make_budget, save_budget, stop_at_budget
from synthrun.context import StageContext
from synthrun.errors import RecipeError, StageError
from synthrun.io import StorageError, atomic_write_text, is_storage_error, read_jsonl, write_json
from synthrun.metrics import RunMetrics, StageMetrics, mean_rating, render_table
from synthrun.prompts import PromptLibrary
from synthrun.records import Record
from synthrun.rounds import rounds_env, rounds_step
from synthrun.runstate import LiveMetrics, RunLock, now_iso, previous_status
from synthrun.secrets import redact, redact_text
from synthrun.stage import Stage

log = logging.getLogger("synthrun")
MARKER = "_SUCCESS"
PARTIAL = "_PARTIAL"
#: Stage keys the runner handles itself (not passed to the stage, not in its fingerprint).
RUNNER_KEYS = ("max_failure_rate",)


class IncompleteStage(RecipeError):
    """A stage lost rows to provider-side LLM failures; the same command retries them (exit 3)."""

    exit_code = 3


class BudgetExhausted(IncompleteStage):
    """A budget cap stopped the run (synthrun.budget); the same command with a raised cap resumes (exit 4)."""

    exit_code = 4


def plain_dict(node: Any) -> dict[str, Any]:
    """A config node as a plain dict with every interpolation resolved."""
    value = OmegaConf.to_container(node, resolve=True)
    if not isinstance(value, dict):
        raise RecipeError(f"expected a mapping of keys, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))


def stage_names(cfg: DictConfig) -> list[str]:
    names = list(cfg.get("stages") or [])
    if not names:
        raise RecipeError("the recipe lists no stages (set `stages: [...]`)")
    for name in names:
        if name not in cfg or not isinstance(cfg[name], DictConfig) or "_target_" not in cfg[name]:
            raise RecipeError(f"stage '{name}' is listed in `stages` but has no block with a `_target_`")
    return names


def build_stage(name: str, node: DictConfig, allow: list[str]) -> Stage:
    """Build one stage block: its ``_target_`` must be an allowed Stage class (see synthrun.allowlist).

    The class validates the block's plain parameters itself, so nothing nested is ever instantiated.
    """
    from omegaconf.errors import OmegaConfBaseException

    from synthrun.allowlist import TargetError, resolve_stage_class

    target = str(node._target_)
    try:
        cls = resolve_stage_class(node._target_, allow, where=f"stage '{name}'")
    except TargetError as exc:
        raise RecipeError(str(exc)) from None
    missing = [str(k) for k in node if k != "_target_" and OmegaConf.is_missing(node, k)]
    if missing:
        raise RecipeError(f"stage '{name}': `{missing[0]}` has no value; set it with {name}.{missing[0]}=...")
    if any(k in node for k in RUNNER_KEYS):
        node = OmegaConf.create({k: v for k, v in node.items() if k not in RUNNER_KEYS})
    try:
        params = plain_dict(node)
        params.pop("_target_", None)
        return cls.model_validate(params)
    except ValidationError as exc:
        raise RecipeError(f"stage '{name}' ({target}): {_first_error(exc)}") from None
    except (OmegaConfBaseException, TypeError, ValueError) as exc:
        msg = str(exc).strip().splitlines()
        raise RecipeError(f"stage '{name}' ({target}): {msg[0] if msg else type(exc).__name__}") from None


def build_stages(cfg: DictConfig) -> list[tuple[str, Stage]]:
    """Compose-time check of a whole recipe: every stage instantiated and its prompts found, nothing run."""
    from synthrun.allowlist import TargetError, check_targets
    from synthrun.llm.client import check_concurrency
    from synthrun.prompts import PromptError

    allow = [str(a) for a in cfg.get("allow_targets") or []]
    try:
        check_targets(cfg, allow)  # every _target_ at any depth, before anything is built
    except TargetError as exc:
        raise RecipeError(str(exc)) from None
    prompts = PromptLibrary([Path(p) for p in cfg.get("prompt_dirs") or []])
    if "provider" in cfg:
        check_concurrency(cfg.provider.get("concurrency"))
    _failure_limit(cfg, None)
    from synthrun.budget import parse_budget
    from synthrun.rounds import parse_rounds

    parse_budget(cfg, stage_names(cfg))
    parse_rounds(cfg, stage_names(cfg))
    shards.shard_size_of(cfg)
    executors.create(cfg)
    stages = [(name, build_stage(name, cfg[name], allow)) for name in stage_names(cfg)]
    check_record_types(stages)
    for name, stage in stages:
        check_concurrency((stage.llm or {}).get("concurrency"), f"{name}.llm.concurrency")
        _failure_limit(cfg, name)
        for prompt in stage.prompt_names() if stage.enabled else []:
            try:
                prompts.get(prompt)
            except (PromptError, OSError) as exc:
                raise RecipeError(f"stage '{name}': {exc}") from None
    return stages


def check_record_types(stages: list[tuple[str, Stage]]) -> None:
    """Each stage reads the record type the stage before it writes (one-line :class:`RecipeError` if not).

    ``Record`` means any type: a stage writing ``Record`` passes on what it read, and one reading
    ``Record`` takes anything; a more specific type than known so far is checked when the run gets there.
    """
    have: type[Record] | None = None
    origin = ""
    for name, stage in stages:
        want = stage.input_type
        if not stage.source and have is not None and not (issubclass(have, want) or issubclass(want, have)):
            raise RecipeError(f"stage '{name}' ({type(stage).__name__}) reads {want.__name__} records, but gets "
                              f"{have.__name__} records from stage '{origin}'")
        if stage.source or (stage.enabled and stage.output_type is not Record):
            have, origin = stage.output_type, name


# LLM failure reasons that mean the provider was not reached or refused (not a weak answer).
_PROVIDER_FAILURES = {"connection", "timeout", "http_4xx", "http_5xx", "rate_limited", "bad_response",
                      "provider_error", "client_error", "circuit_open", "storage"}
# ... and those of them that another try can fix: a stage with any of them is incomplete.
RETRYABLE_FAILURES = {"connection", "timeout", "http_5xx", "rate_limited", "bad_response", "circuit_open",
                      "storage"}


def _failure_limit(cfg: DictConfig, name: str | None) -> float:
    """The share of a stage's LLM calls allowed to fail on the provider side (1.0 with accept_failures)."""
    node = cfg.get(name) if name else None
    value = node.get("max_failure_rate") if isinstance(node, DictConfig) else None
    where = f"{name}.max_failure_rate" if value is not None else "max_failure_rate"
    if value is None:
        value = cfg.get("max_failure_rate") or 0.0
    try:
        limit = float(value)
    except (TypeError, ValueError):
        limit = -1.0
    if not 0.0 <= limit <= 1.0:
        raise RecipeError(f"{where}={value!r}: must be a share between 0 and 1 (e.g. 0.05)")
    return 1.0 if cfg.get("accept_failures") else limit


def _check_llm_reached(name: str, sm: StageMetrics, provider: dict[str, Any], metrics: RunMetrics) -> None:
    """Fail the run when every LLM request of a stage failed on the provider's side (down, bad model, key)."""
    failed = sum(n for reason, n in sm.llm_failures.items() if reason in _PROVIDER_FAILURES)
    if sm.llm_calls == 0 or failed < sm.llm_calls:
        return
    metrics.stages.append(sm)
    from synthrun.llm.backends import backend_for
    from synthrun.llm.provider_config import ProviderConfig

    cfg = ProviderConfig.parse(provider)
    model, where = cfg.model, redact_text(backend_for(cfg).endpoint(cfg))
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(sm.llm_failures.items()))
    raise RecipeError(f"stage '{name}': all {sm.llm_calls} LLM calls failed ({reasons}); check the provider: "
                      f"model {model!r} at {where} (`synthrun providers` shows the set-up)")


def _provider_for(cfg: DictConfig, stage: Stage) -> dict[str, Any]:
    base = plain_dict(cfg.provider) if "provider" in cfg else {}
    merged = dict(base or {})
    merged.update({k: v for k, v in (stage.llm or {}).items() if v is not None})
    return merged


def _fingerprint(node: DictConfig, provider: dict[str, Any], upstream: str) -> str:
    from synthrun.llm.provider_config import answer_fields

    provider = answer_fields(provider)  # settings that change how calls are made, not what they return
    stage = {k: v for k, v in plain_dict(node).items() if k not in RUNNER_KEYS}
    blob = json.dumps(
        {"stage": stage, "provider": provider, "up": upstream},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _chain(fp: str, stage_dir: Path) -> str:
    """Fingerprint handed downstream: this stage's config and the data it produced."""
    data = shards.file_digest(stage_dir / "data.jsonl")
    return hashlib.sha256(f"{fp}:{data}".encode()).hexdigest()[:20]


def _coerce(records: list[Any], stage: Stage, name: str, prev: str) -> list[Any]:
    want = stage.input_type
    out = []
    for i, rec in enumerate(records):
        data = rec.model_dump() if isinstance(rec, Record) else rec
        try:
            out.append(want.model_validate(data))
        except ValidationError as exc:
            rid = data.get("id") or f"#{i}"
            raise StageError(
                f"stage '{name}' expects {want.__name__} records, but record {rid} from '{prev}' "
                f"does not fit ({_first_error(exc)})"
            ) from None
    return out


def _load_output(path: Path, stage: Stage) -> list[Any]:
    cls = stage.output_type
    return [cls.model_validate(row) for row in read_jsonl(path)]


def save_config(cfg: DictConfig, run_dir: Path, name: str = "config.yaml") -> None:
    """Write the composed, resolved config with secret-looking values redacted."""
    plain = plain_dict(cfg)
    plain = {k: v for k, v in plain.items() if k != "hydra"}
    atomic_write_text(run_dir / name, OmegaConf.to_yaml(OmegaConf.create(redact(plain))))


class _Folder:
    """Where this attempt reports: metrics.json/config.yaml, or side files while a finished run is intact.

    A rerun into a folder whose last run completed reports to ``metrics.attempt.json`` and
    ``config.attempt.yaml`` until a stage replaces data (:meth:`claim`); an attempt that fails
    before that leaves the finished run's metrics, config and markers as they were.
    """

    def __init__(self, cfg: DictConfig, run_dir: Path, live: LiveMetrics, keep: bool):
        self.cfg, self.run_dir, self.live, self.attempt = cfg, run_dir, live, keep

    def start(self) -> None:
        save_config(self.cfg, self.run_dir, "config.attempt.yaml" if self.attempt else "config.yaml")

    def claim(self) -> None:
        """This attempt is about to change data: it owns metrics.json and config.yaml from now on."""
        if self.attempt:
            self.attempt = False
            save_config(self.cfg, self.run_dir)
            (self.run_dir / "config.attempt.yaml").unlink(missing_ok=True)
            self.live.move_to(self.run_dir / "metrics.json")


_RESUME_HINT = "free space (or fix the permissions) and give the same command again"


def _storage(exc: OSError, where: Path | None = None) -> StorageError:
    return StorageError.from_os(exc, None if exc.filename or where is None else f"in {where}")


def run(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None) -> RunMetrics:
    """Run every stage of ``cfg`` in ``run_dir`` (resuming finished stages) and write metrics.json."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_storage_error(exc):
            raise _storage(exc) from None
        raise
    stages = build_stages(cfg)  # fail on any bad stage before doing any work
    executor = executors.create(cfg).start()  # connects to Ray now: a bad address fails before any work
    try:
        with RunLock(run_dir):
            return _run_locked(cfg, run_dir, stages, overrides, executor)
    finally:
        executor.close()


def _execute(stage: Stage, records: Any, ctx: StageContext, sm: StageMetrics, job: shards.ShardJob,
             executor: Any) -> list[Any] | shards.RecordFile:
    """Run one stage on its input: in shards when it works per record and gets more than one shard."""
    if shards.wants_shards(stage, records, job.size):
        sm.rows_in, outputs = shards.run_sharded(job, records, ctx, executor)
        return outputs
    if stage.source:
        inputs: Any = []
    elif isinstance(records, shards.RecordFile) and len(records) > job.size:
        if getattr(stage, "streams_input", False):  # it reads its input in passes (dedup): hold nothing
            inputs = shards.RecordStream(records, stage, job.name, job.prev)
        else:
            inputs = shards.compact(records, stage, job.name, job.prev)
    else:
        inputs = _coerce(records, stage, job.name, job.prev)
    sm.rows_in = len(inputs)
    if not stage.enabled:
        log.info("stage %s: disabled, passing %d records through", job.name, len(inputs))
        return list(inputs)
    log.info("stage %s: %s", job.name, "reading its source" if stage.source else f"{len(inputs)} records in")
    streamed = getattr(stage, "iter_records", None) if stage.source else None  # e.g. load_records
    return shards.collect(streamed(ctx) if streamed else stage.run(inputs, ctx), ctx.stage_dir)


def _run_locked(cfg: DictConfig, run_dir: Path, stages: list[tuple[str, Stage]],
                overrides: list[str] | None, executor: Any = None) -> RunMetrics:
    started = time.perf_counter()
    before = previous_status(run_dir / "metrics.json")
    if before.get("status") == "running":
        log.warning("the previous run in %s did not finish (killed? last heartbeat %s); resuming it",
                    run_dir, before.get("heartbeat"))
    keep = before.get("status") == "completed"
    live = LiveMetrics(run_dir / ("metrics.attempt.json" if keep else "metrics.json"))
    folder = _Folder(cfg, run_dir, live, keep)

    run_id = f"{cfg.recipe_name}/{run_dir.name}"
    provider = plain_dict(cfg.provider) if "provider" in cfg else {}
    metrics = RunMetrics(
        run_id=run_id, recipe=str(cfg.recipe_name), provider=provider.get("name"),
        model=provider.get("model"), overrides=[redact_text(str(o)) for o in overrides or []],
        started=now_iso(),
    )
    cache_dir = cfg.paths.get("cache_dir")
    cache_path = Path(cache_dir) / "llm.sqlite" if cache_dir else None
    prompts = PromptLibrary([Path(p) for p in cfg.get("prompt_dirs") or []])
    show_progress = bool(cfg.get("progress", True))
    budget = make_budget(cfg, run_dir)
    spec, env = rounds_env(cfg, stages, run_dir, run_id, metrics, folder, budget, cache_path, prompts, show_progress)
    shard_size = shards.shard_size_of(cfg)
    executor = executor or executors.LocalExecutor()

    records: list[Any] | shards.RecordFile = []
    upstream = ""
    prev = "(start)"
    error: BaseException | None = None
    try:
        folder.start()
        live.write(metrics.model_dump())
        live.start()
        for index, (name, stage) in enumerate(stages, 1):
            span = rounds_step(spec, env, name, records, upstream, prev)
            if span is not None:  # target_rows: the span of stages runs in rounds (synthrun.rounds)
                records, upstream, prev = span
                continue
            stage_dir = run_dir / f"{index:02d}_{name}"
            stage_provider = _provider_for(cfg, stage)
            fp = _fingerprint(cfg[name], stage_provider, upstream)
            marker = stage_dir / MARKER
            if marker.is_file() and marker.read_text().strip() == fp and not stage.always_run:
                records = shards.load(stage_dir / "data.jsonl", stage, shard_size)
                summary = json.loads((stage_dir / "summary.json").read_text())
                metrics.stages.append(StageMetrics.model_validate(summary["metrics"]))
                log.info("stage %s: already done (%d records), skipped", name, len(records))
                upstream, prev = _chain(fp, stage_dir), name
                continue
            stage_dir.mkdir(parents=True, exist_ok=True)
            live.write(metrics.model_dump())
            produces = stage.source or (stage.input_type is not stage.output_type and stage.output_type is not Record)
            sm = StageMetrics(name=name, target=str(cfg[name]._target_), enabled=stage.enabled, produces=produces)
            t0 = time.perf_counter()
            ctx = StageContext(
                name=name, run_id=run_id, run_dir=run_dir, stage_dir=stage_dir, provider=stage_provider,
                cache_path=cache_path, prompts=prompts, seed=int(cfg.get("seed", 0)),
                show_progress=show_progress, budget=guard_for(budget, name),
            )
            job = shards.ShardJob(stage, name, prev, run_id, run_dir, stage_dir, stage_provider, cache_path, prompts,
                                  int(cfg.get("seed", 0)), fp, shard_size,
                                  frozenset(RETRYABLE_FAILURES | {"budget_exhausted"}))
            outputs = _execute(stage, records, ctx, sm, job, executor)
            sm.rows_out = len(outputs)
            sm.retention = round(sm.rows_out / sm.rows_in, 4) if sm.rows_in else None
            sm.mean_rating = mean_rating(outputs)
            st = ctx.stats
            sm.llm_calls, sm.cache_hits = st.calls, st.cache_hits
            sm.tokens_in, sm.tokens_out, sm.cost_usd = st.prompt_tokens, st.completion_tokens, round(st.cost_usd, 6)
            sm.failures, sm.llm_failures = dict(ctx.failures), dict(st.failures)
            sm.evaluation = ctx.summary.get("evaluation")
            sm.wall_time_s = round(time.perf_counter() - t0, 3)
            lost = {k: n for k, n in st.failures.items() if k in RETRYABLE_FAILURES}
            if st.halted == "storage":
                _write_partial(folder, stage_dir, outputs, sm, ctx, fp, lost, metrics)
                raise StorageError.with_message(f"{st.halt_message}; {_RESUME_HINT}")
            stop_at_budget(name, budget, folder, stage_dir, outputs, sm, ctx, fp, metrics)
            _check_llm_reached(name, sm, stage_provider, metrics)
            if lost and sum(lost.values()) > _failure_limit(cfg, name) * max(1, sm.llm_calls):
                _write_partial(folder, stage_dir, outputs, sm, ctx, fp, lost, metrics)
                reasons = ", ".join(f"{k}={v}" for k, v in sorted(lost.items()))
                raise IncompleteStage(
                    f"stage '{name}' is incomplete: {sum(lost.values())} of {sm.llm_calls} LLM calls failed on the "
                    f"provider side ({reasons}); the answers received are cached: give the same command again "
                    f"to retry only the failed calls, or accept the loss with accept_failures=true or "
                    f"+{name}.max_failure_rate=RATE")
            sm.status = "accepted" if lost else "done"
            folder.claim()
            marker.unlink(missing_ok=True)
            outputs = shards.save(stage_dir / "data.jsonl", outputs)
            write_json(stage_dir / "summary.json", {"metrics": sm.model_dump(), "details": ctx.summary})
            (stage_dir / PARTIAL).unlink(missing_ok=True)
            atomic_write_text(marker, fp + "\n")
            shards.cleanup(stage_dir)
            metrics.stages.append(sm)
            records = shards.keep(outputs, stage_dir / "data.jsonl", shard_size)
            upstream, prev = _chain(fp, stage_dir), name
        folder.claim()
        metrics.status = "completed"
        if metrics.stages and metrics.stages[-1].rows_out == 0:
            log.warning("the run finished with 0 records: see failures in %s", run_dir / "metrics.json")
    except BaseException as exc:
        error = _storage(exc, run_dir) if isinstance(exc, OSError) and is_storage_error(exc) else exc
        if isinstance(error, StorageError) and _RESUME_HINT not in str(error):
            error = StorageError.with_message(f"{error}; {_RESUME_HINT}")
        metrics.status = _failed_status(exc)
        metrics.error = redact_text(f"{type(error).__name__}: {error}".splitlines()[0])[:500]
    finally:
        save_budget(budget)
        live.stop()
        metrics.wall_time_s = round(time.perf_counter() - started, 3)
        metrics.recompute_totals()
        live.write(metrics.model_dump(), final=True)
        if metrics.status != "interrupted":  # report.html; a failure there is only a warning
            from synthrun.report import write_report_safely

            write_report_safely(run_dir)
    _report_outcome(error, folder, live, run_dir)
    _print_table(metrics, show_progress)
    return metrics


def _print_table(metrics: RunMetrics, show: bool) -> None:
    if show:
        from synthrun.progress import stderr_console

        stderr_console().print(render_table(metrics))


def _failed_status(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, BudgetExhausted):
        return "budget_exhausted"
    return "partial" if isinstance(exc, IncompleteStage) else "failed"


def _report_outcome(error: BaseException | None, folder: _Folder, live: LiveMetrics, run_dir: Path) -> None:
    """Say where metrics went when the run folder refused them; re-raise the run's error, if any."""
    if error is None:
        if live.fallback is not None:
            log.warning("metrics.json could not be written in %s: written to %s", run_dir, live.fallback)
        return
    if folder.attempt:
        log.warning("this attempt did not change the finished run in %s; its metrics: %s", run_dir, live.path)
    if live.fallback is not None:
        note = f" (metrics.json could not be written in the run folder: written to {live.fallback})"
        if isinstance(error, StorageError | RecipeError):
            error.args = (str(error) + note,)
        else:
            log.error("metrics written to %s", live.fallback)
    raise error


def _write_partial(folder: _Folder, stage_dir: Path, outputs: list[Any] | shards.RecordFile, sm: StageMetrics,
                   ctx: StageContext, fp: str, lost: dict[str, int], metrics: RunMetrics) -> None:
    """Keep an incomplete stage's rows and say what failed (``_PARTIAL``); never mark it done."""
    sm.status = "partial"
    metrics.stages.append(sm)
    folder.claim()
    (stage_dir / MARKER).unlink(missing_ok=True)
    try:
        shards.save(stage_dir / "data.jsonl", outputs)
        write_json(stage_dir / "summary.json", {"metrics": sm.model_dump(), "details": ctx.summary})
        write_json(stage_dir / PARTIAL, {"fingerprint": fp, "llm_calls": sm.llm_calls, "failed": lost,
                                         "rows_out": sm.rows_out})
    except OSError as exc:
        log.warning("could not write the incomplete stage's rows to %s (%s)", stage_dir, exc)
