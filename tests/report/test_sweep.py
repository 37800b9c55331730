"""A sweep's report data: runs side by side and each metric against the swept parameter."""

from __future__ import annotations

import json

from synthrun.report.sweep import gather_sweep, is_sweep, metric_series, parse_overrides
from tests.report.fake_runs import write_fake_run, write_fake_sweep


def test_swept_parameter_and_metric_series(tmp_path):
    sweep = gather_sweep(write_fake_sweep(tmp_path / "sw", thresholds=(8, 6, 7)))
    assert sweep["swept"] == ["curate.threshold"]
    assert [r["name"] for r in sweep["runs"]] == ["curate.threshold=6", "curate.threshold=7", "curate.threshold=8"]
    numeric, series = metric_series(sweep, "curate.threshold", "rows_final")
    assert numeric and len(series) == 1
    name, xs, ys = series[0]
    assert xs == [6.0, 7.0, 8.0]
    expect = [json.loads((tmp_path / "sw" / f"curate.threshold={t}" / "metrics.json").read_text())["rows_final"]
              for t in (6, 7, 8)]
    assert ys == expect and ys[0] >= ys[1] >= ys[2]
    assert ("auc", "judge AUC") not in sweep["metrics"]  # no run has labels


def test_categorical_parameter_and_second_parameter_as_series(tmp_path):
    sw = tmp_path / "sw"
    for prov in ("local", "openai"):
        for t in (6, 8):
            write_fake_run(sw / f"{prov}-{t}", n=30, threshold=t, labels=True,
                           overrides=["+recipe=qa", f"provider={prov}", f"curate.threshold={t}", "progress=false"])
    assert is_sweep(sw) and not is_sweep(sw / "local-6")
    sweep = gather_sweep(sw)
    assert sweep["swept"] == ["provider", "curate.threshold"]
    assert ("auc", "judge AUC") in sweep["metrics"]
    numeric, series = metric_series(sweep, "provider", "estimated_cost_usd")
    assert not numeric and [s[0] for s in series] == ["curate.threshold=6", "curate.threshold=8"]
    assert series[0][1] == ["local", "openai"]


def test_parse_overrides_drops_settings_that_do_not_change_data():
    assert parse_overrides(["+recipe=qa", "paths.output_root=/x", "progress=false", "+curate.llm.model=m",
                            "provider.api_base=http://h", "curate.threshold=7"]) == {
        "curate.llm.model": "m", "curate.threshold": "7"}
