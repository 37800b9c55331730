"""Reports opened from file:// in headless Debian Chromium with the network off.

Checked: no console errors, every chart drawn (an svg/canvas of non-zero size), the funnel in
the page equals metrics.json, a screenshot is taken, and a row carrying
``<script>alert(1)</script>`` shows as text and runs nothing.
"""

from __future__ import annotations

import json

import pytest

from synthrun.api import run_recipe
from synthrun.report import write_report
from tests.conftest import write_chunk_db
from tests.report.browser import PAGE_FACTS, Browser, require_chromium
from tests.report.fake_runs import SCRIPT, write_fake_run


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    require_chromium()
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def open_report(browser: Browser, path) -> dict:
    browser.open(path.resolve().as_uri())
    facts = browser.evaluate(PAGE_FACTS)
    assert browser.errors() == []
    assert facts["scripts"] == 0 and browser.dialogs() == []
    assert facts["charts"], "no chart in the page"
    for chart in facts["charts"]:
        assert chart["kind"] in ("svg", "canvas"), chart
        assert chart["width"] > 0 and chart["height"] > 0 and chart["marks"] > 0, chart
    return facts


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_harness_sees_a_dialog_and_an_error(browser, tmp_path):
    """Control: a page that does run script is caught, so the checks below can fail."""
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>alert(1); console.error('boom')</script></body></html>")
    browser.open(page.as_uri())
    assert browser.dialogs() == ["1"]
    assert any("boom" in e for e in browser.errors())


def test_hostile_row_is_shown_as_text_and_runs_nothing(browser, tmp_path):
    run = write_fake_run(tmp_path / "run", n=8, threshold=0)
    facts = open_report(browser, write_report(run))
    assert SCRIPT in facts["text"] and "<b>bold</b>" in facts["text"]
    assert facts["images"] == 0  # the <img onerror=...> in the row stayed text


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """The quick start on the embedded model, shrunk, and a threshold sweep sharing its request cache."""
    tmp = tmp_path_factory.mktemp("quickstart")
    db = write_chunk_db(tmp / "docs.lancedb")
    common = [f"load.db={db}", "load.max_chunks=2", "generate.n_pairs=1", "generate.max_tokens=96",
              "enrich.enabled=false", "progress=false"]
    run = run_recipe("qa", common, output_root=tmp / "out")
    # the filter off: both runs rate the same pairs whatever the 135M model wrote, so the threshold
    # changes what they keep (with the filter on, a run of batches that dropped every pair gave two
    # identical runs and no threshold chart)
    sweep = run_recipe("qa", [*common, "filter.enabled=false", "curate.threshold=0,8"], output_root=tmp / "out",
                       multirun=True)
    return run, sweep


@pytest.mark.slow
def test_quickstart_run_report_in_browser(browser, real_runs, tmp_path):
    run, _ = real_runs
    metrics = json.loads((run / "metrics.json").read_text())
    facts = open_report(browser, run / "report.html")
    assert facts["funnel"] == [
        {"name": s["name"], "rows_in": s["rows_in"], "rows_out": s["rows_out"], "failures": s["failures"]}
        for s in metrics["stages"]]
    assert int(facts["rows_final"]) == metrics["rows_final"]
    names = {c["name"] for c in facts["charts"]}
    assert {"funnel", "tokens", "time"} <= names
    if metrics["stages"][-2]["rows_in"]:  # the judge rated something: its totals are drawn
        assert "score-0" in names
    assert_png(browser.screenshot(tmp_path / "run.png", full_page=True))


@pytest.mark.slow
def test_sweep_report_in_browser(browser, real_runs, tmp_path):
    _, sweep = real_runs
    facts = open_report(browser, sweep / "report.html")
    runs = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}
    assert sorted(r["run"] for r in facts["sweep"]) == sorted(runs) and len(runs) == 2
    for row in facts["sweep"]:
        m = runs[row["run"]]
        assert int(row["values"]["rows_final"]) == m["rows_final"]
        assert row["stages"] == {s["name"]: str(s["rows_out"]) for s in m["stages"]}
    assert any(c["name"].startswith("sweep-curate.threshold-") for c in facts["charts"])
    assert_png(browser.screenshot(tmp_path / "sweep.png"))
