"""`synthrun report RUN_DIR|SWEEP_DIR [--open] [-o FILE]`: the path printed, one-line errors."""

from __future__ import annotations

from synthrun.cli import main
from synthrun.report import write_report
from tests.report.fake_runs import write_fake_run


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
