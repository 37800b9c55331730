"""HTML reports of runs and sweeps: one self-contained ``report.html`` (inline SVG charts, no script).

``write_report(folder)`` writes ``folder/report.html`` for a run folder (``metrics.json``
and ``NN_stage/`` folders) or a sweep folder (runs in ``*/metrics.json``). The runner and
the sweep callback call :func:`write_report_safely`, which logs a warning instead of failing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from synthrun.report.gather import ReportError

log = logging.getLogger("synthrun")
REPORT_NAME = "report.html"

__all__ = ["REPORT_NAME", "ReportError", "render_report", "write_report", "write_report_safely"]


def render_report(folder: str | Path) -> str:
    """The HTML of the report of a run or sweep folder."""
    from synthrun.report.page import render_run, render_sweep
    from synthrun.report.run import gather_run
    from synthrun.report.sweep import gather_sweep, is_sweep

    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such folder")
    if is_sweep(folder):
        return render_sweep(gather_sweep(folder))
    return render_run(gather_run(folder))


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``folder`` to ``out`` (default ``folder/report.html``) atomically; return its path."""
    from synthrun.io import atomic_write_text

    html = render_report(folder)
    path = Path(out) if out is not None else Path(folder) / REPORT_NAME
    atomic_write_text(path, html)
    return path


def write_report_safely(folder: str | Path) -> Path | None:
    """:func:`write_report`, but a failure is logged as a warning (a report never fails a run)."""
    try:
        path = write_report(folder)
    except Exception as exc:  # noqa: BLE001 - the run's data is written; the report is a bonus
        log.warning("report not written for %s: %s: %s", folder, type(exc).__name__, exc)
        return None
    log.info("report: %s", path)
    return path
