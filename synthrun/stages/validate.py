"""Rate every record with the LLM judge, filter nothing, and write a score-distribution report."""

from __future__ import annotations

import statistics
from typing import Any, ClassVar

from pydantic import Field, model_validator

from synthrun.context import StageContext
from synthrun.io import atomic_write_text, write_json
from synthrun.records import Record, as_rated
from synthrun.stages.rubric import RubricJudge

BANDS = ("PASS", "NEEDS_REVIEW", "FAIL", "UNRATED")
CRITERIA = ("clarity", "accuracy", "usefulness", "difficulty")


def band(total: float | None, pass_threshold: float, review_threshold: float) -> str:
    """The quality band of a rating total: PASS, NEEDS_REVIEW, FAIL (or UNRATED for None)."""
    if total is None:
        return "UNRATED"
    if total >= pass_threshold:
        return "PASS"
    if total >= review_threshold:
        return "NEEDS_REVIEW"
    return "FAIL"


def score_report(records: list[Any], pass_threshold: float = 7.0, review_threshold: float = 5.0) -> dict[str, Any]:
    """Summarise the ratings of ``records`` (objects or dicts with an optional ``rating``).

    Returns:
        A JSON-able dict: ``count``, ``rated``, ``mean``/``median``/``min``/``max`` of the totals,
        ``histogram`` (count per 1-point bin ``"0"``..``"10"``: bin k holds totals in [k, k+1)),
        ``bands`` (count per band), ``cutoffs``, ``criteria_mean`` and ``kept_at_threshold``
        (how many records an export with ``threshold=t`` keeps, for t = 0..10).
    """
    totals: list[float | None] = []
    criteria: dict[str, list[float]] = {c: [] for c in CRITERIA}
    for rec in records:
        rating = rec.get("rating") if isinstance(rec, dict) else getattr(rec, "rating", None)
        if rating is not None and not isinstance(rating, dict):
            rating = rating.model_dump()
        if not rating:
            totals.append(None)
            continue
        totals.append(float(rating["total"]))
        for c in CRITERIA:
            if rating.get(c) is not None:
                criteria[c].append(float(rating[c]))
    rated = [t for t in totals if t is not None]
    histogram = {str(k): 0 for k in range(11)}
    for t in rated:
        histogram[str(min(10, max(0, int(t))))] += 1
    bands = {b: 0 for b in BANDS}
    for t in totals:
        bands[band(t, pass_threshold, review_threshold)] += 1
    return {
        "count": len(totals),
        "rated": len(rated),
        "mean": round(statistics.fmean(rated), 3) if rated else None,
        "median": statistics.median(rated) if rated else None,
        "min": min(rated) if rated else None,
        "max": max(rated) if rated else None,
        "histogram": histogram,
        "bands": bands,
        "cutoffs": {"PASS": pass_threshold, "NEEDS_REVIEW": review_threshold},
        "criteria_mean": {c: round(statistics.fmean(v), 3) if v else None for c, v in criteria.items()},
        "kept_at_threshold": {str(t): sum(1 for x in rated if x >= t) for t in range(11)},
    }


def render_markdown(report: dict[str, Any], title: str = "Validation report") -> str:
    """The report as Markdown: summary, bands, histogram with bars, and kept-per-threshold."""
    n = report["count"]
    lines = [f"# {title}", "", f"- records: {n} ({report['rated']} rated)"]
    if report["mean"] is not None:
        lines.append(f"- total score: mean {report['mean']:g}, median {report['median']:g}, "
                     f"min {report['min']:g}, max {report['max']:g} (0-10)")
        lines.append("- criteria means: " + ", ".join(
            f"{c} {v:g}" for c, v in report["criteria_mean"].items() if v is not None))
    cut = report["cutoffs"]
    lines += ["", "## Bands", "", "| band | rule | records | share |", "|---|---|---:|---:|"]
    rules = {"PASS": f"total >= {cut['PASS']:g}", "NEEDS_REVIEW": f"{cut['NEEDS_REVIEW']:g} <= total < {cut['PASS']:g}",
             "FAIL": f"total < {cut['NEEDS_REVIEW']:g}", "UNRATED": "judge failed"}
    for b, count in report["bands"].items():
        share = f"{count / n:.0%}" if n else "-"
        lines.append(f"| {b} | {rules[b]} | {count} | {share} |")
    width = max(report["histogram"].values() or [0]) or 1
    lines += ["", "## Score histogram", "", "| score | records | |", "|---:|---:|---|"]
    for k, count in report["histogram"].items():
        lines.append(f"| {k} | {count} | {'#' * round(20 * count / width)} |")
    lines += ["", "## Records kept by `export.threshold=T`", "", "| T | kept |", "|---:|---:|"]
    lines += [f"| {t} | {k} |" for t, k in report["kept_at_threshold"].items()]
    return "\n".join(lines) + "\n"


class Validate(RubricJudge):
    """Rate QA or CoT records with the LLM judge and report the score distribution; drop nothing.

    Each record comes out in its own shape with ``rating`` filled and a ``quality_band``
    (PASS / NEEDS_REVIEW / FAIL / UNRATED). The report (``ctx.summary["report"]``,
    ``report.json`` and ``report.md`` in the stage folder) holds counts per 1-point score bin,
    the bands, per-criterion means and how many records each export threshold keeps, so
    ``export.threshold=...`` can then cut at any level without another LLM call.

    Attributes:
        pass_threshold: Lowest total that counts as PASS.
        review_threshold: Lowest total that counts as NEEDS_REVIEW (below it: FAIL).
        rerate: Rate records that already carry a rating again (default: keep their rating).
        topic: Also ask whether each record is about this topic (``rating.topic_relevant``).
        prompt: Judge prompt name (``prompts/curate.yaml``).
        show_source: Give the judge the source passage from provenance, when present.
        max_tokens: Token budget of one rating.
    """

    needs_all_records: ClassVar[bool] = True

    pass_threshold: float = Field(default=7.0, ge=0, le=10)
    review_threshold: float = Field(default=5.0, ge=0, le=10)
    rerate: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Validate:
        if self.review_threshold > self.pass_threshold:
            raise ValueError(f"review_threshold ({self.review_threshold:g}) must not exceed "
                             f"pass_threshold ({self.pass_threshold:g})")
        return self

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        items = [as_rated(r) for r in records]
        todo = [i for i, item in enumerate(items) if self.rerate or item.rating is None]
        for i, item in zip(todo, self.rate([items[i] for i in todo], ctx), strict=True):
            items[i] = item
        out = []
        for item in items:
            total = item.rating.total if item.rating is not None else None
            out.append(item.model_copy(update={
                "quality_band": band(total, self.pass_threshold, self.review_threshold)}))
        report = score_report(out, self.pass_threshold, self.review_threshold)
        report["newly_rated"] = len(todo)
        write_json(ctx.stage_dir / "report.json", report)
        atomic_write_text(ctx.stage_dir / "report.md", render_markdown(report))
        ctx.summary["report"] = report
        ctx.log.info("validated %d records: %s", len(out), report["bands"])
        return self.finish(list[Record](out), [], ctx)
