"""report.html is written at the end of every run and sweep, and a report failure never fails a run."""

from __future__ import annotations

import json

import pytest

import synthrun.report as report
from synthrun.api import run_recipe


def test_every_run_and_sweep_writes_a_report(tmp_path):
    sweep = run_recipe("demo_db", ["ingest.chunk_size=400,800", "progress=false"], output_root=tmp_path / "out",
                       multirun=True)
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(runs) == 2
    for run in runs:  # each run of the sweep wrote its own report when it finished
        html = (run / "report.html").read_text()
        metrics = json.loads((run / "metrics.json").read_text())
        assert f'data-field="rows_out">{metrics["stages"][0]["rows_out"]}<' in html
    html = (sweep / "report.html").read_text()
    assert "ingest.chunk_size" in html
    for r in runs:
        assert f'href="{r.name}/report.html"' in html


def test_a_failing_report_is_a_warning_not_a_failed_run(tmp_path, monkeypatch):
    def broken(folder):
        raise ValueError("chart exploded")

    monkeypatch.setattr(report, "render_report", broken)
    run = run_recipe("demo_db", ["progress=false"], output_root=tmp_path / "out")
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert not (run / "report.html").exists()
    warning = [ln for ln in (run / "run.log").read_text().splitlines() if "report not written" in ln]
    assert len(warning) == 1 and "[WARNING]" in warning[0] and "ValueError: chart exploded" in warning[0]


def test_write_report_safely_returns_none_on_a_bad_folder(tmp_path):
    assert report.write_report_safely(tmp_path / "nothing") is None
    with pytest.raises(report.ReportError):
        report.write_report(tmp_path / "nothing")
