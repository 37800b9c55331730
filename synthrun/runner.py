"""Runs a composed recipe: instantiate every stage, then run them in order with resume.

Each stage writes ``NN_name/data.jsonl``, ``NN_name/summary.json`` and last a
``_SUCCESS`` marker holding a fingerprint of the stage's config and of everything
upstream. Running the same command again skips stages whose marker matches;
an interrupted stage runs again, and the LLM cache answers every call it had
already made, so no work is paid for twice.
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

from synthrun.context import StageContext
from synthrun.io import read_jsonl, write_json, write_jsonl
from synthrun.metrics import RunMetrics, StageMetrics, mean_rating, render_table
from synthrun.prompts import PromptLibrary
from synthrun.records import Record
from synthrun.secrets import redact
from synthrun.stage import Stage, StageError

log = logging.getLogger("synthrun")
MARKER = "_SUCCESS"


class RecipeError(Exception):
    """A recipe that cannot be composed into stages (reported as one line)."""


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
    """Instantiate one stage block, refusing targets outside ``synthrun.`` and ``allow``."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    target = str(node._target_)
    prefixes = ["synthrun.", *allow]
    if not any(target.startswith(p) for p in prefixes):
        raise RecipeError(
            f"stage '{name}': _target_ '{target}' is not allowed (only {prefixes}); "
            f"add its module prefix to `allow_targets` to permit it"
        )
    missing = [k for k in node if k != "_target_" and OmegaConf.is_missing(node, k)]
    if missing:
        raise RecipeError(f"stage '{name}': `{missing[0]}` has no value; set it with {name}.{missing[0]}=...")
    try:
        stage = instantiate(node, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            raise RecipeError(f"stage '{name}' ({target}): {_first_error(cause)}") from None
        msg = str(cause or exc).strip().splitlines()
        raise RecipeError(f"stage '{name}' ({target}): {msg[-1] if msg else exc}") from None
    except ValidationError as exc:  # pragma: no cover - depends on hydra version
        raise RecipeError(f"stage '{name}' ({target}): {_first_error(exc)}") from None
    if not isinstance(stage, Stage):
        raise RecipeError(f"stage '{name}': {target} is not a synthrun Stage")
    return stage


def build_stages(cfg: DictConfig) -> list[tuple[str, Stage]]:
    """Compose-time check of a whole recipe: every stage instantiated and its prompts found, nothing run."""
    from synthrun.prompts import PromptError

    allow = [str(a) for a in cfg.get("allow_targets") or []]
    prompts = PromptLibrary([Path(p) for p in cfg.get("prompt_dirs") or []])
    stages = [(name, build_stage(name, cfg[name], allow)) for name in stage_names(cfg)]
    for name, stage in stages:
        for prompt in stage.prompt_names() if stage.enabled else []:
            try:
                prompts.get(prompt)
            except (PromptError, OSError) as exc:
                raise RecipeError(f"stage '{name}': {exc}") from None
    return stages


# LLM failure reasons that mean the provider was not reached or refused (not a weak answer).
_PROVIDER_FAILURES = {"connection", "timeout", "http_4xx", "http_5xx", "rate_limited", "bad_response",
                      "provider_error", "client_error"}


def _check_llm_reached(name: str, sm: StageMetrics, provider: dict[str, Any], metrics: RunMetrics) -> None:
    """Fail the run when every LLM request of a stage failed on the provider's side (down, bad model, key)."""
    failed = sum(n for reason, n in sm.llm_failures.items() if reason in _PROVIDER_FAILURES)
    if sm.llm_calls == 0 or failed < sm.llm_calls:
        return
    metrics.stages.append(sm)
    model = str(provider.get("model") or "")
    where = "in-process" if model.startswith("local/") else provider.get("api_base") or "its default endpoint"
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(sm.llm_failures.items()))
    raise RecipeError(f"stage '{name}': all {sm.llm_calls} LLM calls failed ({reasons}); check the provider: "
                      f"model {model!r} at {where} (`synthrun providers` shows the set-up)")


def _provider_for(cfg: DictConfig, stage: Stage) -> dict[str, Any]:
    base = OmegaConf.to_container(cfg.provider, resolve=True) if "provider" in cfg else {}
    merged = dict(base or {})
    merged.update({k: v for k, v in (stage.llm or {}).items() if v is not None})
    return merged


#: Provider settings that change how calls are made, not what they return.
_TRANSPORT_KEYS = ("api_base", "api_key_env", "concurrency", "timeout", "max_retries")


def _fingerprint(node: DictConfig, provider: dict[str, Any], upstream: str) -> str:
    provider = {k: v for k, v in provider.items() if k not in _TRANSPORT_KEYS}
    blob = json.dumps(
        {"stage": OmegaConf.to_container(node, resolve=True), "provider": provider, "up": upstream},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _chain(fp: str, stage_dir: Path) -> str:
    """Fingerprint handed downstream: this stage's config and the data it produced."""
    data = hashlib.sha256((stage_dir / "data.jsonl").read_bytes()).hexdigest()
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


def save_config(cfg: DictConfig, run_dir: Path) -> None:
    """Write the composed, resolved config with secret-looking values redacted."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain = {k: v for k, v in plain.items() if k != "hydra"}
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(redact(plain))), encoding="utf-8")


def run(cfg: DictConfig, run_dir: Path, overrides: list[str] | None = None) -> RunMetrics:
    """Run every stage of ``cfg`` in ``run_dir`` (resuming finished stages) and write metrics.json."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = build_stages(cfg)  # fail on any bad stage before doing any work
    save_config(cfg, run_dir)

    run_id = f"{cfg.recipe_name}/{run_dir.name}"
    provider = OmegaConf.to_container(cfg.provider, resolve=True) if "provider" in cfg else {}
    metrics = RunMetrics(
        run_id=run_id, recipe=str(cfg.recipe_name), provider=provider.get("name"),
        model=provider.get("model"), overrides=list(overrides or []),
    )
    cache_dir = cfg.paths.get("cache_dir")
    cache_path = Path(cache_dir) / "llm.sqlite" if cache_dir else None
    prompts = PromptLibrary([Path(p) for p in cfg.get("prompt_dirs") or []])
    show_progress = bool(cfg.get("progress", True))

    records: list[Any] = []
    upstream = ""
    prev = "(start)"
    try:
        for index, (name, stage) in enumerate(stages, 1):
            stage_dir = run_dir / f"{index:02d}_{name}"
            stage_provider = _provider_for(cfg, stage)
            fp = _fingerprint(cfg[name], stage_provider, upstream)
            marker = stage_dir / MARKER
            if marker.is_file() and marker.read_text().strip() == fp and not stage.always_run:
                records = _load_output(stage_dir / "data.jsonl", stage)
                summary = json.loads((stage_dir / "summary.json").read_text())
                metrics.stages.append(StageMetrics.model_validate(summary["metrics"]))
                log.info("stage %s: already done (%d records), skipped", name, len(records))
                upstream, prev = _chain(fp, stage_dir), name
                continue
            marker.unlink(missing_ok=True)
            stage_dir.mkdir(parents=True, exist_ok=True)
            sm = StageMetrics(name=name, target=str(cfg[name]._target_), enabled=stage.enabled)
            t0 = time.perf_counter()
            inputs = [] if stage.source else _coerce(records, stage, name, prev)
            sm.rows_in = len(inputs)
            ctx = StageContext(
                name=name, run_id=run_id, run_dir=run_dir, stage_dir=stage_dir, provider=stage_provider,
                cache_path=cache_path, prompts=prompts, seed=int(cfg.get("seed", 0)),
                show_progress=show_progress,
            )
            if stage.enabled:
                log.info("stage %s: %s", name, "reading its source" if stage.source else f"{len(inputs)} records in")
                outputs = list(stage.run(inputs, ctx))
            else:
                log.info("stage %s: disabled, passing %d records through", name, len(inputs))
                outputs = list(inputs)
            sm.rows_out = len(outputs)
            sm.retention = round(sm.rows_out / sm.rows_in, 4) if sm.rows_in else None
            sm.mean_rating = mean_rating(outputs)
            st = ctx.stats
            sm.llm_calls, sm.cache_hits = st.calls, st.cache_hits
            sm.tokens_in, sm.tokens_out, sm.cost_usd = st.prompt_tokens, st.completion_tokens, round(st.cost_usd, 6)
            sm.failures, sm.llm_failures = dict(ctx.failures), dict(st.failures)
            sm.evaluation = ctx.summary.get("evaluation")
            sm.wall_time_s = round(time.perf_counter() - t0, 3)
            _check_llm_reached(name, sm, stage_provider, metrics)
            write_jsonl(stage_dir / "data.jsonl", outputs)
            write_json(stage_dir / "summary.json", {"metrics": sm.model_dump(), "details": ctx.summary})
            marker.write_text(fp + "\n")
            metrics.stages.append(sm)
            records, upstream, prev = outputs, _chain(fp, stage_dir), name
        metrics.status = "completed"
        if metrics.stages and metrics.stages[-1].rows_out == 0:
            log.warning("the run finished with 0 records: see failures in %s", run_dir / "metrics.json")
    except BaseException as exc:
        metrics.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        metrics.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        raise
    finally:
        metrics.wall_time_s = round(time.perf_counter() - started, 3)
        metrics.recompute_totals()
        write_json(run_dir / "metrics.json", metrics.model_dump())
    if show_progress:
        from synthrun.progress import stderr_console

        stderr_console().print(render_table(metrics))
    return metrics
