"""Sweep-level summary: one table over the runs of a multirun (CSV and Markdown)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from synthrun.io import atomic_write_text
from synthrun.metrics import SUMMARY_COLUMNS, RunMetrics, summary_row

log = logging.getLogger("synthrun")


def summarize_sweep(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Collect every ``*/metrics.json`` under ``sweep_dir`` into ``sweep_summary.{csv,md}``."""
    sweep_dir = Path(sweep_dir)
    rows = []
    for mpath in sorted(sweep_dir.glob("*/metrics.json")):
        m = RunMetrics.model_validate(json.loads(mpath.read_text()))
        rows.append(summary_row(mpath.parent.name, m))
    if not rows:
        return rows
    if any(r.get("auc") is not None for r in rows):  # a judge sweep: best judge first
        rows.sort(key=lambda r: -1.0 if r.get("auc") is None else -float(r["auc"]))
    with open(sweep_dir / "sweep_summary.csv.tmp", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "sweep_summary.csv.tmp").replace(sweep_dir / "sweep_summary.csv")
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join("" if row[c] is None else str(row[c]) for c in SUMMARY_COLUMNS) + " |")
    atomic_write_text(sweep_dir / "sweep_summary.md", "\n".join(lines) + "\n")
    return rows


class SweepSummaryCallback(Callback):
    """Hydra callback: after a multirun, write the sweep summary next to the runs."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        rows = summarize_sweep(config.hydra.sweep.dir)
        if rows:
            from synthrun.report import write_report_safely

            write_report_safely(config.hydra.sweep.dir)
        if rows:
            log.info("sweep summary: %s", Path(config.hydra.sweep.dir) / "sweep_summary.md")
            try:
                from rich.table import Table

                from synthrun.progress import stderr_console

                table = Table(title=f"sweep {config.hydra.sweep.dir}")
                for col in SUMMARY_COLUMNS:
                    table.add_column(col)
                for row in rows:
                    table.add_row(*("" if row[c] is None else str(row[c]) for c in SUMMARY_COLUMNS))
                stderr_console().print(table)
            except Exception:  # pragma: no cover - display only
                pass
