"""The report page: self-contained, escaped, numbers from the files; and `synthrun report`."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from synthrun.cli import main
from synthrun.report import render_report, write_report
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


def test_write_report_and_cli(tmp_path, capsys):
    run = write_fake_run(tmp_path / "run", n=20)
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(run / "report.html") and (run / "report.html").stat().st_size > 5000
    assert main(["report", str(run), "-o", str(tmp_path / "x.html")]) == 0
    assert (tmp_path / "x.html").read_text().startswith("<!DOCTYPE html>")
    assert write_report(run) == run / "report.html"


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for args, code in [([], 2), ([str(tmp_path / "missing")], 1), ([str(tmp_path / "empty")], 1),
                       (["--bogus", str(tmp_path)], 2)]:
        assert main(["report", *args]) == code
        err = capsys.readouterr().err
        assert err.startswith("synthrun: error: ") and err.count("\n") == 1, err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.json").write_text("{not json")
    assert main(["report", str(bad)]) == 1
    assert "metrics.json: not readable JSON" in capsys.readouterr().err
    assert not (bad / "report.html").exists()


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
