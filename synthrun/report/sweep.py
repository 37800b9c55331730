"""The data of a sweep's report: its runs side by side and each metric against the swept parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthrun.report.gather import ReportError
from synthrun.report.run import gather_run

#: Override keys that do not change the data (left out of the swept parameters).
IGNORED_KEYS = ("recipe", "run_name", "sweep_name", "progress", "seed_hint")
IGNORED_PREFIXES = ("paths.", "hydra.", "provider.api_base", "provider.api_key_env", "provider.concurrency",
                    "provider.timeout", "provider.max_retries")

#: Metrics charted against each swept parameter: (key, label).
METRICS = (
    ("retention", "retention (final / first rows)"), ("rows_final", "rows kept"), ("mean_rating", "mean rating"),
    ("auc", "judge AUC"), ("estimated_cost_usd", "cost $"), ("tokens", "tokens in + out"),
    ("llm_calls", "LLM calls"), ("wall_time_s", "wall time s"),
)


def is_sweep(path: Path) -> bool:
    return not (path / "metrics.json").is_file() and any(path.glob("*/metrics.json"))


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    out = {}
    for item in overrides:
        if "=" not in item:
            continue
        key, value = item.split("=", 1)
        key = key.lstrip("+~")
        if key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES):
            continue
        out[key] = value
    return out


def as_number(v: str) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def gather_sweep(sweep_dir: str | Path) -> dict[str, Any]:
    """Read every ``*/metrics.json`` run of a sweep (light: no samples) and find the swept parameters."""
    sweep_dir = Path(sweep_dir)
    runs = []
    for mpath in sorted(sweep_dir.glob("*/metrics.json")):
        run = gather_run(mpath.parent, light=True)
        m = run["metrics"]
        values = {
            "retention": m.get("retention"), "rows_final": m.get("rows_final"), "mean_rating": m.get("mean_rating"),
            "auc": run.get("auc"), "estimated_cost_usd": m.get("estimated_cost_usd"),
            "tokens": (m.get("tokens_in") or 0) + (m.get("tokens_out") or 0), "llm_calls": m.get("llm_calls"),
            "wall_time_s": m.get("wall_time_s"),
        }
        report = mpath.parent / "report.html"
        runs.append({"name": mpath.parent.name, "metrics": m, "values": values, "funnel": run["funnel"],
                     "params": parse_overrides(m.get("overrides") or []),
                     "link": f"{mpath.parent.name}/report.html" if report.is_file() else None})
    if not runs:
        raise ReportError(f"{sweep_dir}: no */metrics.json (not a sweep folder)")
    keys = list(dict.fromkeys(k for r in runs for k in r["params"]))
    swept = [k for k in keys if len({r["params"].get(k) for r in runs}) > 1] or keys
    stages = list(dict.fromkeys(s["name"] for r in runs for s in r["funnel"]))
    metrics = [(k, label) for k, label in METRICS if any(r["values"].get(k) is not None for r in runs)]
    return {"kind": "sweep", "dir": str(sweep_dir), "name": sweep_dir.name, "runs": runs, "swept": swept,
            "stages": stages, "metrics": metrics, "recipe": runs[0]["metrics"].get("recipe", "")}


def metric_series(sweep: dict[str, Any], param: str, metric: str) -> tuple[bool, list[tuple[str, list, list]]]:
    """Points of ``metric`` against ``param``: ``(numeric x?, [(series name, xs, ys)])``.

    Runs that differ in the other swept parameters form separate series.
    """
    others = [p for p in sweep["swept"] if p != param]
    runs = sweep["runs"]
    numeric = all(as_number(r["params"].get(param, "")) is not None for r in runs)
    groups: dict[str, list[tuple[Any, Any]]] = {}
    for r in runs:
        name = ", ".join(f"{p}={r['params'].get(p, '')}" for p in others)
        x = r["params"].get(param, "(default)")
        groups.setdefault(name, []).append((as_number(x) if numeric else x, r["values"].get(metric)))
    series = []
    for name, pts in groups.items():
        if numeric:
            pts.sort(key=lambda p: p[0])
        series.append((name, [p[0] for p in pts], [p[1] for p in pts]))
    return numeric, series
