"""Ingest stage: documents folder -> LanceDB tables; re-ingest is a no-op; changed files are replaced."""

import shutil
from pathlib import Path

import lancedb
import pytest
from pydantic import ValidationError

from synthrun.context import StageContext
from synthrun.ingest.readers import detect_format, read_bytes
from synthrun.ingest.store import schema as store_schema
from synthrun.ingest.tokens import Measure
from synthrun.records import Chunk
from synthrun.stage import StageError
from synthrun.stages.ingest import Ingest, resolve_input
from synthrun.stages.load_chunks import LoadChunks

DOCS = Path(__file__).resolve().parents[1] / "data" / "docs"
H5PY_DOC = Path("/usr/share/doc/python-h5py-doc")


def _ctx(tmp_path: Path, name: str = "ingest") -> StageContext:
    stage_dir = tmp_path / "run" / f"01_{name}"
    stage_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(name=name, run_id="r", run_dir=tmp_path / "run", stage_dir=stage_dir, show_progress=False)


def _rows(db: Path, table: str) -> list[dict]:
    return lancedb.connect(str(db)).open_table(table).to_arrow().to_pylist()


@pytest.fixture
def docs(tmp_path: Path) -> list[str]:
    """A copy of the fixture folders (reST in h5py-doc style; PDF+HTML+2 code files; Markdown+text)."""
    copy = tmp_path / "docs"
    shutil.copytree(DOCS, copy)
    return [str(copy / "h5py_rst"), str(copy / "mixed"), str(copy / "notes")]


def test_ingests_every_format_and_reingest_is_a_noop(tmp_path, docs):
    db = tmp_path / "docs.lancedb"
    stage = Ingest(input_dir=docs, db=str(db), chunk_size=300, chunk_overlap=40)
    ctx = _ctx(tmp_path)
    chunks = stage.run([], ctx)

    assert all(isinstance(c, Chunk) for c in chunks)
    sources = {c.source for c in chunks}
    assert sources == {"h5py_rst/quick.rst", "h5py_rst/dataset.rst", "h5py_rst/api_h5f.rst",
                       "mixed/attributes.html", "mixed/chunked_storage.pdf", "mixed/read_dataset.py",
                       "mixed/write_chunks.c", "notes/compression.md", "notes/readme.txt"}
    code = {(c.source, c.language) for c in chunks if c.table == "code_chunks"}
    assert code == {("mixed/read_dataset.py", "python"), ("mixed/write_chunks.c", "c")}
    assert all(c.kind == ("code" if c.table == "code_chunks" else "text") for c in chunks)

    # every chunk is an exact slice of its document's text, within the size limit
    for c in chunks:
        path = Path(docs[0]).parent / c.source
        fmt, language = detect_format(path)
        doc = read_bytes(path.read_bytes(), path.name, fmt, language)
        assert doc.text[c.start:c.end] == c.text and 0 < len(c.text) <= 300
        assert c.provenance.chunk_id == c.id and c.title
    # Markdown, text and code chunks point into the file itself
    md = next(c for c in chunks if c.source == "notes/compression.md" and "Using a filter" in c.section)
    assert (Path(docs[2]) / "compression.md").read_text()[md.start:md.end] == md.text

    # headings become sections; Sphinx markup does not break reST; HTML chrome is dropped
    by_source = {s: [c for c in chunks if c.source == s] for s in sources}
    assert {c.section for c in by_source["h5py_rst/dataset.rst"]} >= {
        "Datasets", "Datasets > Chunked storage", "Datasets > Reference"}
    rst_text = " ".join(c.text for c in by_source["h5py_rst/quick.rst"])
    assert "Use File to open a file." in rst_text  # :class:`File` rendered as its name
    assert "Changed in version 3.0: Files open read-only" in rst_text
    assert "This text belongs to a directive that no one registered." in rst_text  # unknown directive kept
    dataset_text = " ".join(c.text for c in by_source["h5py_rst/dataset.rst"])
    assert "method resize(size, axis=None)" in dataset_text and "#1234" in dataset_text
    html = " ".join(c.text for c in by_source["mixed/attributes.html"])
    assert "Attributes are small named pieces of data" in html and 'dset.attrs["units"] = "kelvin"' in html
    assert "not content" not in html and "Home" not in html and "test suite" not in html
    assert by_source["mixed/attributes.html"][0].title == "Attributes"
    pdf = by_source["mixed/chunked_storage.pdf"]
    assert pdf[0].title == "Chunked storage in HDF5" and {c.section for c in pdf} == {"page 1", "page 2"}
    assert "rdcc_nbytes" in " ".join(c.text for c in pdf)
    c_sections = {c.section for c in by_source["mixed/write_chunks.c"]}
    assert {"make_chunked_plist()", "main()"} <= c_sections
    assert "class AttributeDumper" in {c.section for c in by_source["mixed/read_dataset.py"]}
    # consecutive chunks of one long section overlap
    ds = by_source["h5py_rst/dataset.rst"]
    assert any(b.start < a.end and a.section == b.section for a, b in zip(ds, ds[1:], strict=False))

    text_rows, code_rows = _rows(db, "text_chunks"), _rows(db, "code_chunks")
    assert len(text_rows) + len(code_rows) == len(chunks) == ctx.summary["new_chunks"]
    assert len({r["id"] for r in text_rows + code_rows}) == len(chunks)
    assert ctx.summary["files"] == 9 and ctx.summary["files_changed"] == 9

    versions = {t: lancedb.connect(str(db)).open_table(t).version for t in ("text_chunks", "code_chunks")}
    ctx2 = _ctx(tmp_path, "again")
    again = Ingest(input_dir=docs, db=str(db), chunk_size=300, chunk_overlap=40).run([], ctx2)
    assert again == [] and ctx2.summary["new_chunks"] == 0 and ctx2.summary["files_unchanged"] == 9
    assert ctx2.summary["table_rows"] == {"text_chunks": len(text_rows), "code_chunks": len(code_rows)}
    assert _rows(db, "text_chunks") == text_rows and _rows(db, "code_chunks") == code_rows
    assert {t: lancedb.connect(str(db)).open_table(t).version for t in versions} == versions  # nothing written

    # what ingest wrote is what LoadChunks reads back
    loaded = LoadChunks(db=str(db), tables=["text_chunks", "code_chunks"]).run([], _ctx(tmp_path, "load"))
    assert sorted(c.id for c in loaded) == sorted(c.id for c in chunks)
    assert {c.id: c.text for c in loaded} == {c.id: c.text for c in chunks}


def test_changed_file_replaces_only_its_chunks_and_prune(tmp_path, docs):
    db = tmp_path / "db.lancedb"
    first = Ingest(input_dir=docs, db=str(db), chunk_size=300, chunk_overlap=0).run([], _ctx(tmp_path))
    md = Path(docs[2]) / "compression.md"
    md.write_text(md.read_text() + "\n## Szip\n\nSzip needs an HDF5 build that includes it.\n")
    ctx = _ctx(tmp_path, "second")
    new = Ingest(input_dir=docs, db=str(db), chunk_size=300, chunk_overlap=0).run([], ctx)
    assert {c.source for c in new} == {"notes/compression.md"}
    assert ctx.summary["files_changed"] == 1 and ctx.summary["files_unchanged"] == 8
    rows = _rows(db, "text_chunks")
    md_rows = [r for r in rows if r["source"] == "notes/compression.md"]
    assert sorted(r["id"] for r in md_rows) == sorted(c.id for c in new)
    assert any("Szip needs" in r["text"] for r in md_rows)
    untouched = {c.id for c in first if c.source != "notes/compression.md"}
    assert untouched <= {r["id"] for r in rows + _rows(db, "code_chunks")}

    (Path(docs[1]) / "write_chunks.c").unlink()
    kept = Ingest(input_dir=docs, db=str(db), chunk_size=300, chunk_overlap=0).run([], _ctx(tmp_path, "keep"))
    assert kept == [] and any(r["source"] == "mixed/write_chunks.c" for r in _rows(db, "code_chunks"))
    ctx = _ctx(tmp_path, "prune")
    Ingest(input_dir=docs, db=str(db), chunk_size=300, chunk_overlap=0, prune=True).run([], ctx)
    assert {r["source"] for r in _rows(db, "code_chunks")} == {"mixed/read_dataset.py"}
    assert ctx.summary["deleted_chunks"] > 0


def test_token_unit_and_chunk_settings_change_rechunks(tmp_path, docs):
    db = tmp_path / "db.lancedb"
    chunks = Ingest(input_dir=docs[0], db=str(db), chunk_size=60, chunk_overlap=10, unit="tokens").run(
        [], _ctx(tmp_path))
    measure = Measure("tokens")
    assert chunks and all(measure.count(c.text) <= 60 for c in chunks)
    assert max(measure.count(c.text) for c in chunks) > 40
    rechunked = Ingest(input_dir=docs[0], db=str(db), chunk_size=120, chunk_overlap=10, unit="tokens").run(
        [], _ctx(tmp_path, "again"))
    assert len(rechunked) < len(chunks)
    assert len(_rows(db, "text_chunks")) == len(rechunked)


def test_include_exclude_globs(tmp_path, docs):
    ctx = _ctx(tmp_path)
    chunks = Ingest(input_dir=docs, db=str(tmp_path / "db"), include=["*.rst", "*.c"],
                    exclude=["api_*"]).run([], ctx)
    assert {c.source for c in chunks} == {"h5py_rst/quick.rst", "h5py_rst/dataset.rst", "mixed/write_chunks.c"}


def test_bad_input_is_a_one_line_error(tmp_path):
    with pytest.raises(StageError, match="ingest: input not found: .*nowhere"):
        Ingest(input_dir=str(tmp_path / "nowhere"), db=str(tmp_path / "db")).run([], _ctx(tmp_path))
    with pytest.raises(StageError, match="ingest: no documents given; set ingest.input_dir="):
        Ingest(db=str(tmp_path / "db")).run([], _ctx(tmp_path))
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Ingest(input_dir="x", db="y", chunk_size=100, chunk_overlap=100)


def test_unreadable_file_is_counted_not_fatal(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (folder / "ok.md").write_text("# Title\n\nSome text.\n")
    ctx = _ctx(tmp_path)
    chunks = Ingest(input_dir=str(folder), db=str(tmp_path / "db")).run([], ctx)
    assert [c.source for c in chunks] == ["in/ok.md"]
    assert list(ctx.summary["files_failed"]) == ["in/broken.pdf"] and ctx.failures == {"unreadable_file": 1}


def test_demo_docs_resolve_from_the_project_data():
    path = resolve_input("recipes/data/demo_docs")
    assert path.is_dir() and len(list(path.glob("*.md")) + list(path.glob("*.rst"))) == 6
    assert sorted(p.name for p in (path / "examples").iterdir()) == ["append_measurements.py", "write_read.c"]


@pytest.mark.skipif(not (H5PY_DOC / "html" / "_sources").is_dir(), reason="python-h5py-doc not installed")
def test_debian_h5py_docs_and_examples(tmp_path):
    inputs = [str(H5PY_DOC / "html" / "_sources"), str(H5PY_DOC / "api" / "html" / "_sources"),
              str(H5PY_DOC / "examples")]
    db = tmp_path / "h5py.lancedb"
    ctx = _ctx(tmp_path)
    chunks = Ingest(input_dir=inputs, db=str(db), chunk_size=1200, chunk_overlap=150).run([], ctx)
    assert ctx.summary["files_failed"] == {} and ctx.summary["files"] >= 70
    assert any("create_dataset" in c.text for c in chunks if c.table == "text_chunks")
    assert {c.language for c in chunks if c.table == "code_chunks"} == {"python"}
    ctx2 = _ctx(tmp_path, "again")
    assert Ingest(input_dir=inputs, db=str(db), chunk_size=1200, chunk_overlap=150).run([], ctx2) == []
    assert ctx2.summary["new_chunks"] == 0 and ctx2.summary["table_rows"] == ctx.summary["table_rows"]


def test_demo_db_and_ingest_recipes_run_through_the_runner(tmp_path, monkeypatch):
    from synthrun.api import run_recipe

    monkeypatch.setenv("SYNTHRUN_DATA", str(tmp_path / "data"))
    run_recipe("demo_db", ["progress=false"], output_root=tmp_path / "out")
    demo = tmp_path / "data" / "demo.lancedb"
    chunks = LoadChunks(db=str(demo), tables=["text_chunks"]).run([], _ctx(tmp_path, "load"))
    assert len({c.source for c in chunks}) == 6 and all(c.source.startswith("demo_docs/") for c in chunks)
    assert all(50 < len(c.text) <= 800 for c in chunks)
    code = LoadChunks(db=str(demo), tables=["code_chunks"]).run([], _ctx(tmp_path, "code"))
    assert {(c.source, c.language) for c in code} == {("demo_docs/examples/append_measurements.py", "python"),
                                                       ("demo_docs/examples/write_read.c", "c")}

    db = tmp_path / "mine.lancedb"
    run_dir = run_recipe("ingest", [f"ingest.input_dir={DOCS / 'mixed'}", f"ingest.db={db}", "ingest.unit=tokens",
                                    "ingest.chunk_size=128", "ingest.chunk_overlap=16", "progress=false"],
                         output_root=tmp_path / "out")
    rows = len(_rows(db, "text_chunks")) + len(_rows(db, "code_chunks"))
    assert rows > 4 and len((run_dir / "01_ingest" / "data.jsonl").read_text().splitlines()) == rows


def test_cli_one_line_errors_for_a_file_db_and_an_empty_table(tmp_path):
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nSome text.\n")
    db_file = tmp_path / "db.lancedb"
    db_file.write_text("I am a file")
    env = {**__import__("os").environ, "SYNTHRUN_OUTPUTS": str(tmp_path / "out")}
    out = subprocess.run([sys.executable, "-m", "synthrun", "+recipe=ingest", f"ingest.input_dir={docs}",
                          f"ingest.db={db_file}", "progress=false"], capture_output=True, text=True, env=env)
    err = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert len(err) == 1 and err[0].startswith("synthrun: error:") and "is a regular file" in err[0], err
    assert db_file.read_text() == "I am a file"

    empty = tmp_path / "empty.lancedb"
    lancedb.connect(str(empty)).create_table("text_chunks", schema=store_schema())
    out = subprocess.run([sys.executable, "-m", "synthrun", "+recipe=qa", f"load.db={empty}", "progress=false"],
                         capture_output=True, text=True, env=env)
    err = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert len(err) == 1 and "'text_chunks'" in err[0] and "empty" in err[0], err
