"""The report page: gathered data + SVG charts through a Jinja2 template with autoescape on.

Only the chart SVG (built by :mod:`synthrun.report.charts`, which escapes every label) is
marked safe; every other value, including all row text, is escaped by Jinja2.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from markupsafe import Markup

from synthrun.report import charts
from synthrun.report.sweep import metric_series

TEMPLATES = Path(__file__).parent / "templates"
OK, FAILED, NOT_RUN = "#59a14f", "#e15759", "#bab0ac"


def _env():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v: "" if v is None else charts.fmt(v)
    env.filters["pct"] = lambda v: "" if v is None else f"{v:.0%}"
    return env


def _chart(name: str, svg: str, caption: str = "") -> dict[str, Any]:
    return {"name": name, "svg": Markup(svg), "caption": caption}


def run_charts(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The charts of a run report, by section."""
    funnel = data["funnel"]
    names = [s["name"] if s["enabled"] else f"{s['name']} (off)" for s in funnel]
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in ("funnel", "scores", "roc", "tools", "selection", "cost")}
    if funnel:
        out["funnel"].append(_chart("funnel", charts.hbar_chart(
            names, [("rows out", [s["rows_out"] for s in funnel]),
                    ("dropped", [max(0, s["rows_in"] - s["rows_out"]) for s in funnel])],
            "Rows per stage: kept (blue) and dropped (orange)")))
        if any(s["tokens_in"] or s["tokens_out"] for s in funnel):
            out["cost"].append(_chart("tokens", charts.hbar_chart(
                names, [("tokens in", [s["tokens_in"] for s in funnel]),
                        ("tokens out", [s["tokens_out"] for s in funnel])], "Tokens per stage")))
        out["cost"].append(_chart("time", charts.hbar_chart(
            names, [("wall time s", [s["wall_time_s"] for s in funnel])], "Wall time per stage (s)")))
        if any(s["cost_usd"] for s in funnel):
            out["cost"].append(_chart("cost", charts.hbar_chart(
                names, [("cost $", [s["cost_usd"] for s in funnel])], "Estimated cost per stage ($)")))
    for i, sc in enumerate(data["scores"]):
        out["scores"].append(_chart(f"score-{i}", charts.histogram(
            sc["bins"], f"{sc['stage']}: {sc['field']}", threshold=sc["threshold"], bands=sc["bands"]),
            f"{sc['n']} rows, mean {charts.fmt(sc['mean'])}" + (
                f" (of {sc['stage_rows_in']} in: the stage keeps no file of the rows it drops)"
                if sc["n"] < sc["stage_rows_in"] else "")))
    for i, roc in enumerate(data["roc"]):
        auc = "" if roc.get("auc") is None else f" (AUC {roc['auc']:.3f})"
        out["roc"].append(_chart(f"roc-{i}", charts.line_chart(
            [("", roc["fpr"], roc["tpr"])], f"{roc['stage']}: ROC{auc}", "false positive rate",
            "true positive rate", diagonal=True, unit_square=True, width=360, height=320)))
    tools = data.get("tools")
    if tools and tools["tools"]:
        labels = [t for t, _ in tools["tools"]]
        out["tools"].append(_chart("tool-success", charts.hbar_chart(
            labels, [("ok", [c["ok"] for _, c in tools["tools"]]), ("failed", [c["failed"] for _, c in tools["tools"]]),
                     ("not run", [c["not_run"] for _, c in tools["tools"]])],
            f"{tools['stage']}: calls per tool", colours=(OK, FAILED, NOT_RUN))))
    g = data.get("graph")
    if g and g["nodes"]:
        status = {}
        for tool, c in (tools or {}).get("tools", []):
            ran = c["ok"] + c["failed"]
            if ran:
                status[tool] = c["ok"] / ran
        out["tools"].append(_chart("tool-graph", charts.graph(
            g["nodes"], g["edges"], f"Tool dependency graph ({len(g['nodes'])} tools, {len(g['edges'])} edges)",
            status)))
    sel = data.get("selection")
    if sel and sel["points"]:
        out["selection"].append(_chart("selection-map", charts.scatter(
            sel["points"], f"{sel['stage']}: embeddings (PCA), colour = cluster"), sel["note"]))
    return out


def sweep_charts(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for param in sweep["swept"]:
        for key, label in sweep["metrics"]:
            if len({r["values"].get(key) for r in sweep["runs"]}) < 2:
                continue  # the same in every run: the table says it, a flat line adds nothing
            numeric, series = metric_series(sweep, param, key)
            title = f"{label} vs {param}"
            if numeric:
                svg = charts.line_chart(series, title, param, label)
            else:
                labels = [f"{x}" + (f" ({s[0]})" if s[0] else "") for s in series for x in s[1]]
                svg = charts.vbar_chart(labels, [y for s in series for y in s[2]], title, param)
            out.append(_chart(f"sweep-{param}-{key}", svg))
    runs = sweep["runs"]
    if runs and sweep["stages"]:
        out.append(_chart("sweep-funnel", charts.hbar_chart(
            [r["name"] for r in runs],
            [(st, [next((s["rows_out"] for s in r["funnel"] if s["name"] == st), 0) for r in runs])
             for st in sweep["stages"][-1:]],
            f"Rows out of the last stage ({sweep['stages'][-1]}) per run")))
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def render_run(data: dict[str, Any]) -> str:
    return _env().get_template("run.html.j2").render(d=data, m=data["metrics"], charts=run_charts(data),
                                                      generated=_now())


def render_sweep(sweep: dict[str, Any]) -> str:
    return _env().get_template("sweep.html.j2").render(s=sweep, charts=sweep_charts(sweep), generated=_now())
