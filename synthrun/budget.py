"""Spending caps: ``budget.max_usd``, ``budget.max_tokens`` and ``budget.max_calls`` for a run and per stage.

Config (``conf/config.yaml`` has the defaults, all ``null`` = no cap)::

    budget:
      max_usd: 2.0          # USD for the whole run folder
      max_tokens: null      # prompt + completion tokens
      max_calls: null       # requests sent to the provider (retries and JSON re-asks count)
      stages:               # the same caps for one stage, e.g. +budget.stages.generate.max_calls=40
        generate: {max_calls: 40}

What is counted: requests *sent* to the provider. An answer from the request cache costs nothing
and counts against no cap, so the same command with a raised cap resumes and pays nothing twice.
The spend is kept for the run folder across attempts (``RUN_DIR/budget.json``): a rerun with the
same caps stops at once; raise a cap to go on (the tally is written every ~2 s and at the end, so a
``kill -9`` can lose the last seconds of it). Calls of the embedded judge's forward passes
(``provider=local`` probability judge) do not go through the client and are not capped.

Before each request the client asks :meth:`BudgetGuard.reserve` with an estimate of the call:
prompt tokens (characters / 4) plus the request's ``max_tokens`` (1024 when unset) as the
completion, priced with :mod:`synthrun.llm.pricing`. When the spend so far, the calls in flight
and this estimate could pass a cap, nothing more is sent; calls in flight finish and are cached,
the stage is kept as partial (``_PARTIAL``), downstream stages do not run, ``metrics.json`` says
``status: budget_exhausted`` and the command exits with :data:`EXIT_BUDGET` (4).

With ``executor=ray`` the meters of a sharded stage live in one Ray actor that every worker's
client asks before each request (:mod:`synthrun.executors.ray`), so the caps count all workers'
calls; at most ``provider.concurrency`` calls per worker are in flight when a cap refuses.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthrun.stage import StageError

CAP_KEYS = ("max_usd", "max_tokens", "max_calls")
#: Exit code of a run that stopped at a budget cap.
EXIT_BUDGET = 4
BUDGET_FILE = "budget.json"
#: Completion tokens assumed for a request that sets no ``max_tokens``.
DEFAULT_COMPLETION = 1024
_SAVE_EVERY_S = 2.0


def estimate_tokens(text: str) -> int:
    """Token estimate of ``text``: one token per four characters (at least 1 for non-empty text)."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def message_tokens(messages: list[dict[str, Any]]) -> int:
    """Estimated prompt tokens of chat ``messages`` (their contents, characters / 4)."""
    return estimate_tokens(" ".join(str(m.get("content") or "") for m in messages))


@dataclass
class Spend:
    """Calls, tokens and USD (spent, reserved or estimated)."""

    calls: int = 0
    tokens: int = 0
    usd: float = 0.0

    def add(self, other: Spend, sign: int = 1) -> None:
        self.calls += sign * other.calls
        self.tokens += sign * other.tokens
        self.usd += sign * other.usd


@dataclass
class Caps:
    """The caps of one scope (None = no cap)."""

    max_usd: float | None = None
    max_tokens: int | None = None
    max_calls: int | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.max_usd, self.max_tokens, self.max_calls))

    def passed(self, total: Spend) -> str | None:
        """The first cap ``total`` goes over, as ``key=value``, or None."""
        if self.max_calls is not None and total.calls > self.max_calls:
            return f"max_calls={self.max_calls}"
        if self.max_tokens is not None and total.tokens > self.max_tokens:
            return f"max_tokens={self.max_tokens}"
        if self.max_usd is not None and total.usd > self.max_usd + 1e-12:
            return f"max_usd={self.max_usd:g}"
        return None


def _cap(value: Any, key: str, where: str) -> float | int | None:
    if value is None:
        return None
    try:
        number = float(value)
        ok = math.isfinite(number) and number >= 0 and not isinstance(value, bool)
        if key != "max_usd":
            ok = ok and number == int(number)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        kind = "a number of USD >= 0 (e.g. 2.5)" if key == "max_usd" else "a whole number >= 0"
        raise StageError(f"{where}.{key}={value!r}: must be {kind}, or null for no cap")
    return number if key == "max_usd" else int(number)


def _caps(node: Any, where: str) -> Caps:
    if node is None:
        return Caps()
    if not isinstance(node, dict):
        raise StageError(f"{where}={node!r}: must be a mapping of {', '.join(CAP_KEYS)}")
    unknown = [k for k in node if k not in CAP_KEYS]
    if unknown:
        raise StageError(f"{where}.{unknown[0]}: unknown budget key; use {', '.join(CAP_KEYS)}")
    return Caps(**{k: _cap(node.get(k), k, where) for k in CAP_KEYS})  # type: ignore[arg-type]


@dataclass
class BudgetConfig:
    """The run's caps and each stage's."""

    run: Caps = field(default_factory=Caps)
    stages: dict[str, Caps] = field(default_factory=dict)

    def any(self) -> bool:
        return self.run.any() or any(c.any() for c in self.stages.values())


def parse_budget(cfg: Any, stage_names: list[str] | None = None) -> BudgetConfig:
    """``cfg.budget`` checked (one-line :class:`StageError` for a bad value), before any work."""
    from omegaconf import DictConfig, OmegaConf

    node = cfg.get("budget") if cfg is not None else None
    if node is None:
        return BudgetConfig()
    plain = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    if not isinstance(plain, dict):
        raise StageError(f"budget={plain!r}: must be a mapping (budget.max_usd=..., budget.max_calls=...)")
    stages = plain.pop("stages", None) or {}
    if not isinstance(stages, dict):
        raise StageError(f"budget.stages={stages!r}: must map stage names to caps")
    out = BudgetConfig(run=_caps(plain, "budget"))
    for name, caps in stages.items():
        if stage_names is not None and name not in stage_names:
            raise StageError(f"budget.stages.{name}: no stage '{name}' in this recipe ({', '.join(stage_names)})")
        out.stages[str(name)] = _caps(caps, f"budget.stages.{name}")
    return out


class Meter:
    """Spend of one scope against its caps (thread-safe), with the calls in flight reserved."""

    def __init__(self, caps: Caps, label: str, spent: Spend | None = None):
        self.caps, self.label = caps, label
        self.spent = spent or Spend()
        self.reserved = Spend()
        self.stopped: str | None = None

    def would_pass(self, estimate: Spend) -> str | None:
        total = Spend()
        for part in (self.spent, self.reserved, estimate):
            total.add(part)
        return self.caps.passed(total)


class BudgetExhaustedSignal(Exception):
    """Raised inside the client when a cap refuses a request (becomes a ``budget_exhausted`` result)."""


class Budget:
    """The run's meters: one for the run, one per stage; persisted in ``RUN_DIR/budget.json``."""

    def __init__(self, config: BudgetConfig, run_dir: Path | None = None):
        self.config = config
        self.path = Path(run_dir) / BUDGET_FILE if run_dir is not None else None
        self._lock = threading.Lock()
        before = self._load()
        self.run = Meter(config.run, "budget", Spend(**before.get("run", {})))
        self._stage_spent = {k: Spend(**v) for k, v in (before.get("stages") or {}).items()}
        self._stages: dict[str, Meter] = {}
        self._saved = time.monotonic()

    def _load(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def stage(self, name: str) -> Meter:
        if name not in self._stages:
            caps = self.config.stages.get(name, Caps())
            self._stages[name] = Meter(caps, f"budget.stages.{name}", self._stage_spent.pop(name, None))
        return self._stages[name]

    def guard(self, name: str) -> BudgetGuard:
        return BudgetGuard(self, [self.run, self.stage(name)])

    def save(self) -> None:
        """Write the spend so far (``budget.json``); a failure to write is not fatal."""
        if self.path is None:
            return
        from synthrun.io import write_json

        with self._lock:
            stages = {k: asdict(v) for k, v in self._stage_spent.items()}
            stages.update({k: asdict(m.spent) for k, m in self._stages.items()})
            data = {"run": asdict(self.run.spent), "stages": stages,
                    "caps": {"run": asdict(self.config.run),
                             "stages": {k: asdict(v) for k, v in self.config.stages.items()}}}
            self._saved = time.monotonic()
        try:
            write_json(self.path, data)
        except OSError:
            pass

    def maybe_save(self) -> None:
        if time.monotonic() - self._saved >= _SAVE_EVERY_S:
            self.save()

    def spent_line(self) -> str:
        s = self.run.spent
        usd = f", ${s.usd:.4f}" if s.usd else ""
        return f"{s.calls} calls, {s.tokens:,} tokens{usd} sent in this run folder"


@dataclass
class Ticket:
    """One reserved call: what was reserved on which meters."""

    estimate: Spend
    meters: list[Meter]


class MeterSet:
    """Reserve/settle on a list of meters (not thread-safe by itself: callers hold a lock, or it lives
    alone in a Ray actor that runs one method at a time, see :mod:`synthrun.executors.ray`)."""

    def __init__(self, meters: list[Meter]):
        self.meters = meters

    def reserve(self, estimate: Spend) -> str | None:
        """Reserve ``estimate`` on every meter; or return the refused cap (``label.key=value``), reserving nothing."""
        for meter in self.meters:
            cap = meter.stopped or meter.would_pass(estimate)
            if cap:
                meter.stopped = cap
                return f"{meter.label}.{cap}"
        for meter in self.meters:
            meter.reserved.add(estimate)
        return None

    def settle(self, estimate: Spend, actual: Spend) -> None:
        for meter in self.meters:
            meter.reserved.add(estimate, -1)
            meter.spent.add(actual)

    def snapshot(self) -> list[Meter]:
        return self.meters


def estimate_call(messages: list[dict[str, Any]], params: dict[str, Any], price_in: float,
                  price_out: float) -> Spend:
    """What one request may cost: its prompt (characters / 4) plus its ``max_tokens`` as completion."""
    p_tok = message_tokens(messages)
    c_tok = int(params.get("max_tokens") or DEFAULT_COMPLETION)
    return Spend(calls=1, tokens=p_tok + c_tok, usd=p_tok * price_in + c_tok * price_out)


def actual_call(prompt_tokens: int, completion_tokens: int, price_in: float, price_out: float) -> Spend:
    return Spend(calls=1, tokens=prompt_tokens + completion_tokens,
                 usd=prompt_tokens * price_in + completion_tokens * price_out)


class BudgetGuard:
    """What one stage's LLM client asks before each request it sends (see :meth:`reserve`)."""

    def __init__(self, budget: Budget, meters: list[Meter]):
        self.budget = budget
        self.meters = meters
        self._set = MeterSet(meters)

    def reserve(self, messages: list[dict[str, Any]], params: dict[str, Any], price_in: float = 0.0,
                price_out: float = 0.0) -> Ticket:
        """Reserve one call, or raise :class:`BudgetExhaustedSignal` when it could pass a cap."""
        estimate = estimate_call(messages, params, price_in, price_out)
        with self.budget._lock:
            refused = self._set.reserve(estimate)
        if refused:
            raise BudgetExhaustedSignal(refused)
        return Ticket(estimate, list(self.meters))

    def settle(self, ticket: Ticket, prompt_tokens: int = 0, completion_tokens: int = 0,
               price_in: float = 0.0, price_out: float = 0.0) -> None:
        """The call came back (or failed): replace its reservation with what it really used."""
        actual = actual_call(prompt_tokens, completion_tokens, price_in, price_out)
        with self.budget._lock:
            MeterSet(ticket.meters).settle(ticket.estimate, actual)
        self.budget.maybe_save()

    def adopt(self, meters: list[Meter]) -> None:
        """Take over the spend and stops of ``meters`` (the same scopes, kept elsewhere: a Ray actor)."""
        with self.budget._lock:
            for mine, theirs in zip(self.meters, meters, strict=True):
                mine.spent, mine.stopped, mine.reserved = theirs.spent, theirs.stopped, Spend()
        self.budget.save()


def exhausted_message(stage: str, cap: str, budget: Budget, rows_out: int, calls: int, done: int) -> str:
    """The one line a run that stopped at a cap ends with."""
    key, _, value = cap.rpartition("=")
    try:
        raised = f"{key}={float(value) * 2:g}"
    except ValueError:
        raised = f"{key}=..."
    return (f"budget exhausted in stage '{stage}' ({cap} reached: {budget.spent_line()}); {done} stage(s) "
            f"done, '{stage}' kept as partial ({rows_out} records from {calls} answered calls); the answers received "
            f"are cached: raise the cap (e.g. {raised}) and give the same command to resume "
            f"(cached answers are not paid or counted again)")


# ---------------------------------------------------------------------------------- runner hooks


def make_budget(cfg: Any, run_dir: Path) -> Budget | None:
    """The run's meters when a cap is set (or an earlier attempt with caps kept a tally), else None."""
    caps = parse_budget(cfg)
    return Budget(caps, run_dir) if caps.any() or (Path(run_dir) / BUDGET_FILE).is_file() else None


def guard_for(budget: Budget | None, name: str) -> BudgetGuard | None:
    return budget.guard(name) if budget is not None else None


def save_budget(budget: Budget | None) -> None:
    if budget is not None:
        budget.save()


def stop_at_budget(name: str, budget: Budget | None, folder: Any, stage_dir: Path, outputs: Any, sm: Any,
                   ctx: Any, fp: str, metrics: Any) -> None:
    """A stage whose client hit a cap: keep its rows as partial (``_PARTIAL``) and end the run (exit 4)."""
    if ctx.stats.halted != "budget_exhausted" or budget is None:
        return
    from synthrun.runner import BudgetExhausted, _write_partial

    _write_partial(folder, stage_dir, outputs, sm, ctx, fp, {"budget_exhausted": 1}, metrics)
    meters = budget.guard(name).meters
    cap = next((f"{m.label}.{m.stopped}" for m in meters if m.stopped), "a budget cap")
    answered = sm.llm_calls - sm.llm_failures.get("budget_exhausted", 0)
    raise BudgetExhausted(exhausted_message(name, cap, budget, sm.rows_out, answered, len(metrics.stages) - 1))
