"""The fixed ``metrics.json`` schema every run writes, so runs of a sweep compare column by column."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1


class StageMetrics(BaseModel):
    """Counters of one stage (also the stage's ``summary.json`` under ``metrics``)."""

    name: str
    target: str
    enabled: bool = True
    #: done | partial (provider-side LLM failures: rerun to retry them) | accepted (failures accepted)
    status: str | None = None
    #: True for a stage that makes a new kind of record (a source, or e.g. chunks -> QA pairs).
    produces: bool = False
    rows_in: int = 0
    rows_out: int = 0
    retention: float | None = None
    mean_rating: float | None = None
    llm_calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    wall_time_s: float = 0.0
    #: Records dropped or failed, by reason (what the stage lost and why).
    failures: dict[str, int] = Field(default_factory=dict)
    #: LLM requests that failed after retries, by reason (counted once per request).
    llm_failures: dict[str, int] = Field(default_factory=dict)
    #: A judge evaluation's metrics (``judge_report`` stage: roc_auc, best_f1, per_kind ...).
    evaluation: dict[str, Any] | None = None


class RunMetrics(BaseModel):
    """What ``metrics.json`` holds; every key is always present (None where it does not apply)."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    recipe: str
    status: str = "running"  # running | completed | partial | budget_exhausted | failed | interrupted
    error: str | None = None
    #: When the run started and when it last reported (a ``running`` run with an old heartbeat was killed).
    started: str | None = None
    heartbeat: str | None = None
    provider: str | None = None
    model: str | None = None
    overrides: list[str] = Field(default_factory=list)
    rows_final: int = 0
    retention: float | None = None
    mean_rating: float | None = None
    llm_calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    estimated_cost_usd: float = 0.0
    wall_time_s: float = 0.0
    failures_by_reason: dict[str, int] = Field(default_factory=dict)
    llm_failures_by_reason: dict[str, int] = Field(default_factory=dict)
    #: ROC-AUC of the judge when the recipe evaluates one (judge_eval), else None.
    auc: float | None = None
    evaluation: dict[str, Any] | None = None
    stages: list[StageMetrics] = Field(default_factory=list)
    #: ``target_rows`` runs (synthrun.rounds): per-round inputs, rows kept, yield, cost; cost per kept row.
    rounds: dict[str, Any] | None = None

    def recompute_totals(self) -> None:
        """Fill the run-level totals from the stage rows."""
        s = self.stages
        self.llm_calls = sum(x.llm_calls for x in s)
        self.cache_hits = sum(x.cache_hits for x in s)
        self.tokens_in = sum(x.tokens_in for x in s)
        self.tokens_out = sum(x.tokens_out for x in s)
        self.estimated_cost_usd = round(sum(x.cost_usd for x in s), 6)
        self.failures_by_reason = _by_stage(s, "failures")
        self.llm_failures_by_reason = _by_stage(s, "llm_failures")
        if s:
            self.rows_final = s[-1].rows_out
            # retention of the run: final rows / rows made by the last stage that made a new kind of
            # record (e.g. QA pairs from chunks), so it reads "share of the generated rows kept"
            maker = next((x for x in reversed(s) if x.produces), None) or next((x for x in s if x.rows_out), None)
            base = maker.rows_out if maker else 0
            self.retention = round(self.rows_final / base, 4) if base else None
            self.mean_rating = next((x.mean_rating for x in reversed(s) if x.mean_rating is not None), None)
            self.evaluation = next((x.evaluation for x in reversed(s) if x.evaluation), None)
            self.auc = self.evaluation.get("roc_auc") if self.evaluation else None


def _by_stage(stages: list[StageMetrics], field: str) -> dict[str, int]:
    """``{"stage:reason": n}`` over the stages' counters named ``field``."""
    out: dict[str, int] = {}
    for x in stages:
        for reason, n in getattr(x, field).items():
            key = f"{x.name}:{reason}"
            out[key] = out.get(key, 0) + n
    return out


def mean_rating(records: Iterable[Any]) -> float | None:
    """Mean ``rating.total`` over records that have one."""
    totals = []
    for r in records:
        rating = getattr(r, "rating", None)
        if rating is None and isinstance(r, dict):
            rating = r.get("rating")
        total = getattr(rating, "total", None) if rating is not None else None
        if total is None and isinstance(rating, dict):
            total = rating.get("total")
        if isinstance(total, int | float):
            totals.append(float(total))
    return round(sum(totals) / len(totals), 4) if totals else None


SUMMARY_COLUMNS = [
    "run", "status", "provider", "model", "rows_final", "retention", "mean_rating", "auc", "llm_calls", "cache_hits",
    "tokens_in", "tokens_out", "estimated_cost_usd", "wall_time_s",
]


def summary_row(name: str, m: RunMetrics) -> dict[str, Any]:
    d = m.model_dump()
    return {"run": name, **{k: d[k] for k in SUMMARY_COLUMNS[1:]}}


def render_table(m: RunMetrics) -> Any:
    """A rich Table of the stage rows, printed at the end of a run."""
    from rich.table import Table

    t = Table(title=f"{m.recipe} — {m.status} ({m.wall_time_s:.1f} s)")
    for col in ("stage", "rows in", "rows out", "retention", "mean rating", "LLM calls", "cache hits",
                "tokens in/out", "cost $", "failures"):
        t.add_column(col)
    for x in m.stages:
        t.add_row(
            x.name if x.enabled else f"{x.name} (skipped)",
            str(x.rows_in), str(x.rows_out),
            "" if x.retention is None else f"{x.retention:.0%}",
            "" if x.mean_rating is None else f"{x.mean_rating:.2f}",
            str(x.llm_calls), str(x.cache_hits), f"{x.tokens_in}/{x.tokens_out}", f"{x.cost_usd:.4f}",
            ", ".join([f"{k}={v}" for k, v in sorted(x.failures.items())]
                      + [f"llm:{k}={v}" for k, v in sorted(x.llm_failures.items())]),
        )
    return t
