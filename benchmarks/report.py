"""Time and size of a run report for synthetic QA runs of 1k and 100k generated rows.

    python benchmarks/report.py [--rows 1000 100000] [--repeat 3]

Writes a fake run folder per size (``tests.report.fake_runs``: load -> generate -> curate with
``rejected.jsonl`` -> export, every row rated), then times ``write_report`` (gather: streaming
every score-bearing file and reservoir-sampling rows; render: SVG charts + Jinja2 page) and
prints the best of ``--repeat`` runs (wall time, and the CPU time of the whole ``write_report``, which a
loaded machine does not inflate) and the size of ``report.html``.
Goal: 100k rows in < 3 s and < 5 MB.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthrun.report import write_report  # noqa: E402
from synthrun.report.page import render_run  # noqa: E402
from synthrun.report.run import gather_run  # noqa: E402
from tests.report.fake_runs import write_fake_run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1000, 100_000])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"cpus {os.cpu_count()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'rows':>8} {'data MB':>8} {'gather s':>9} {'render s':>9} {'total s':>8} {'total cpu s':>12} "
          f"{'report MB':>10}  goal (wall)")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            run = write_fake_run(Path(tmp) / f"run{n}", n=n, labels=True)
            data_mb = sum(p.stat().st_size for p in run.rglob("*.jsonl")) / 1e6
            best = (float("inf"), 0.0, 0.0, 0.0)
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                data = gather_run(run)
                t1 = time.perf_counter()
                render_run(data)
                t2, c2 = time.perf_counter(), time.process_time()
                path = write_report(run)
                total, cpu = time.perf_counter() - t2, time.process_time() - c2
                best = min(best, (total, t1 - t0, t2 - t1, cpu))
            size = path.stat().st_size / 1e6
            met = best[0] < 3 and size < 5 if n >= 100_000 else size < 5
            ok &= met
            print(f"{n:>8} {data_mb:>8.1f} {best[1]:>9.3f} {best[2]:>9.3f} {best[0]:>8.3f} {best[3]:>12.3f} {size:>10.3f}  "
                  f"{'met' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
