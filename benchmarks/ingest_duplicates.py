"""Cross-format duplicate chunks at ingest: precision / recall on labelled PDF chunks, and the
effect on a real Sphinx HTML build.

    python benchmarks/ingest_duplicates.py [--docs /usr/share/doc/python-h5py-doc/html]

Part 1 (labelled). The reST sources of a Sphinx project (``_sources/**/*.rst.txt``) are split
in two halves by a seeded shuffle. A "PDF manual" is built from the rendered text of EVERY
source (one or more pages per document, lines wrapped at 80 characters as a PDF text layer
has them). Ingest reads the first half of the sources and the PDF. A PDF chunk is labelled
*duplicate* when its page comes from a document of the ingested half (its text is already
stored) and *unique* when it comes from the other half (its text exists only in the PDF and
must be kept). Dropped PDF chunks are the positives: precision = dropped duplicates / dropped,
recall = dropped duplicates / duplicates, for several ``dedup_threshold`` values.

Part 2 (unlabelled, real files). The whole HTML folder (rendered ``*.html`` pages plus their
``_sources``) is ingested with and without dedup: chunks stored, exact and near duplicates
dropped, and which HTML pages were dropped entirely.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthrun.ingest.pipeline import ingest  # noqa: E402
from synthrun.ingest.readers import detect_format, read_bytes  # noqa: E402
from tests.ingest.make_fixture_pdf import build as build_pdf  # noqa: E402

LINES_PER_PAGE = 45


def _pages(text: str) -> list[list[str]]:
    lines: list[str] = []
    for para in text.split("\n\n"):
        flat = " ".join(para.split()).encode("latin-1", "ignore").decode("latin-1")
        if flat:
            lines += [*textwrap.wrap(flat, 80), ""]
    return [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]


def labelled(sources: list[Path], root: Path, work: Path, thresholds: list[float], seed: int) -> None:
    rng = random.Random(seed)
    order = sorted(sources)
    rng.shuffle(order)
    half = set(order[: len(order) // 2])
    kept_dir = work / "sources"
    pages: list[list[str]] = []
    page_label: dict[int, bool] = {}  # 1-based page -> its text is also ingested from a source
    for path in order:
        fmt, lang = detect_format(path)
        doc = read_bytes(path.read_bytes(), path.name, fmt, lang)
        for page in _pages(doc.text):
            pages.append(page)
            page_label[len(pages)] = path in half
        if path in half:
            dest = kept_dir / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
    manual = work / "manual"
    manual.mkdir()
    (manual / "manual.pdf").write_bytes(build_pdf(pages, "Manual"))
    print(f"part 1: {len(order)} reST sources, {len(half)} ingested; PDF manual of {len(pages)} pages "
          f"({sum(page_label.values())} pages from ingested sources)")
    print(f"{'threshold':>9} {'pdf chunks':>10} {'dup':>5} {'unique':>6} {'dropped':>7} {'precision':>9} "
          f"{'recall':>6} {'unique kept':>11} {'seconds':>7}")
    for threshold in thresholds:
        db = work / f"db_{threshold}"
        base = ingest([kept_dir], db, chunk_size=1200, chunk_overlap=150, dedup=False)
        start = time.perf_counter()
        full = ingest([manual], db, chunk_size=1200, chunk_overlap=150, dedup=True, dedup_threshold=threshold)
        seconds = time.perf_counter() - start
        plain = ingest([manual], work / f"plain_{threshold}", chunk_size=1200, chunk_overlap=150, dedup=False)
        kept = {c.id for c in full.new_chunks}
        all_chunks = plain.new_chunks
        assert base.changed == len(half)
        dup = [c for c in all_chunks if page_label[int(c.section.split()[-1])]]
        uniq = [c for c in all_chunks if not page_label[int(c.section.split()[-1])]]
        # ids depend on the file key and offsets only, so the same chunk has the same id in both runs
        dropped_dup = sum(c.id not in kept for c in dup)
        dropped_uniq = sum(c.id not in kept for c in uniq)
        dropped = dropped_dup + dropped_uniq
        precision = dropped_dup / dropped if dropped else float("nan")
        recall = dropped_dup / len(dup) if dup else float("nan")
        kept_uniq = (len(uniq) - dropped_uniq) / len(uniq) if uniq else float("nan")
        print(f"{threshold:>9.2f} {len(all_chunks):>10} {len(dup):>5} {len(uniq):>6} {dropped:>7} "
              f"{precision:>9.3f} {recall:>6.3f} {kept_uniq:>11.3f} {seconds:>7.2f}")


def real_html(folder: Path, work: Path) -> None:
    print(f"\npart 2: {folder} (rendered HTML + _sources), chunk_size 1200")
    for dedup in (False, True):
        start = time.perf_counter()
        rep = ingest([folder], work / f"html_{dedup}", chunk_size=1200, chunk_overlap=150, dedup=dedup)
        seconds = time.perf_counter() - start
        by_kind: dict[str, int] = {}
        for c in rep.new_chunks:
            kind = "rst" if ".rst" in c.source else c.source.rsplit(".", 1)[-1]
            by_kind[kind] = by_kind.get(kind, 0) + 1
        print(f"  dedup={str(dedup):5} files {rep.files:3}  chunks stored {len(rep.new_chunks):5} {by_kind}  "
              f"dropped exact {rep.duplicates['exact_chunks']:4} near {rep.duplicates['near_chunks']:4}  "
              f"html pages dropped whole {len(rep.duplicate_files):3}  {seconds:.1f}s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="/usr/share/doc/python-h5py-doc/html")
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    root = Path(args.docs)
    sources = sorted((root / "_sources").rglob("*.rst.txt"))
    if not sources:
        print(f"no _sources/*.rst.txt under {root} (apt-get install python-h5py-doc)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        labelled(sources, root / "_sources", work, args.thresholds, args.seed)
        real_html(root, work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
