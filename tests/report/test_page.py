"""The report page: self-contained, escaped, numbers from the files; and `synthrun report`."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from synthrun.report import render_report
from tests.report.fake_runs import SCRIPT, write_fake_run


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parsed(html: str) -> Tags:
    p = Tags()
    p.feed(html)
    return p


def test_hostile_row_text_is_escaped_and_nothing_loads(tmp_path):
    run = write_fake_run(tmp_path / "run", n=8, threshold=0)  # every row kept and sampled
    html = render_report(run)
    page = parsed(html)
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
    assert SCRIPT in "".join(page.text)  # shown as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # nothing fetched from anywhere: no src/href to a URL, and a CSP that forbids scripts
    assert not re.search(r'(src|href)="(https?:)?//', html)
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src" not in csp


def test_funnel_table_holds_the_metrics_numbers(tmp_path):
    run = write_fake_run(tmp_path / "run", n=50)
    page = parsed(render_report(run))
    stages = [a["data-stage"] for t, a in page.tags if t == "tr" and "data-stage" in a]
    metrics = json.loads((run / "metrics.json").read_text())
    assert stages == [s["name"] for s in metrics["stages"]]
    charts = [a["data-chart"] for t, a in page.tags if "data-chart" in a]
    assert {"funnel", "tokens", "time", "cost", "score-0"} <= set(charts)
    assert "roc-0" not in charts  # no labelled rows: no ROC


def test_a_failed_run_with_a_half_written_stage_still_renders(tmp_path):
    run = write_fake_run(tmp_path / "run", n=20)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(status="failed", error="StageError: stage 'export' <b>broke</b>")
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "04_export" / "data.jsonl").unlink()
    (run / "04_export" / "summary.json").unlink()
    (run / "03_curate" / "rejected.jsonl").write_text('{"id": "x", "rejected_reason": "r"}\n{"id": "torn')
    html = render_report(run)
    assert "StageError: stage &#39;export&#39; &lt;b&gt;broke&lt;/b&gt;" in html
    assert '<span class="status-failed" data-field="status">failed</span>' in html
    assert "03_curate/data.jsonl" in html  # kept rows: the last stage that has a data file
