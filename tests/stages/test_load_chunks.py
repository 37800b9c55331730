"""LoadChunks: reads chunk rows from real LanceDB tables on disk."""

from pathlib import Path

import lancedb
import pytest

from synthrun.context import StageContext
from synthrun.ingest import store
from synthrun.records import Chunk
from synthrun.stage import StageError
from synthrun.stages.load_chunks import LoadChunks


def _row(i: int, source: str, kind: str = "text", language: str = "") -> dict:
    return {"id": f"id{i}", "text": f"chunk text {i}", "source": source, "kind": kind, "title": "T",
            "section": f"S{i}", "start": i * 10, "end": i * 10 + 9, "language": language,
            "file_hash": "h", "chunker": "c"}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "docs.lancedb"
    conn = lancedb.connect(str(path))
    conn.create_table("text_chunks", data=[_row(i, "docs/b.rst" if i % 2 else "docs/a.md") for i in range(6)],
                      schema=store.schema())
    conn.create_table("code_chunks", data=[_row(10, "code/x.py", "code", "python")], schema=store.schema())
    return path


def _ctx(tmp_path: Path, seed: int = 0) -> StageContext:
    return StageContext(name="load", run_id="r", run_dir=tmp_path, stage_dir=tmp_path / "01_load", seed=seed,
                        show_progress=False)


def test_loads_one_table_in_source_order(db, tmp_path):
    ctx = _ctx(tmp_path)
    chunks = LoadChunks(db=str(db), tables="text_chunks").run([], ctx)
    assert all(isinstance(c, Chunk) for c in chunks)
    assert [(c.source, c.start) for c in chunks] == [("docs/a.md", 0), ("docs/a.md", 20), ("docs/a.md", 40),
                                                     ("docs/b.rst", 10), ("docs/b.rst", 30), ("docs/b.rst", 50)]
    first = chunks[0]
    assert (first.id, first.text, first.section, first.end, first.table) == ("id0", "chunk text 0", "S0", 9,
                                                                              "text_chunks")
    assert first.provenance.chunk_id == "id0" and first.provenance.source == "docs/a.md"
    assert ctx.summary["rows_per_table"] == {"text_chunks": 6}


def test_unifies_tables_and_filters(db, tmp_path):
    chunks = LoadChunks(db=str(db), tables=["text_chunks", "code_chunks"]).run([], _ctx(tmp_path))
    assert len(chunks) == 7
    code = [c for c in chunks if c.table == "code_chunks"]
    assert [(c.kind, c.language, c.source) for c in code] == [("code", "python", "code/x.py")]
    only_b = LoadChunks(db=str(db), tables=["text_chunks"], where="source = 'docs/b.rst'").run([], _ctx(tmp_path))
    assert {c.source for c in only_b} == {"docs/b.rst"} and len(only_b) == 3


def test_max_chunks_and_seeded_shuffle(db, tmp_path):
    head = LoadChunks(db=str(db), max_chunks=2).run([], _ctx(tmp_path))
    assert [c.id for c in head] == ["id0", "id2"]
    a = LoadChunks(db=str(db), shuffle=True, seed=3).run([], _ctx(tmp_path))
    b = LoadChunks(db=str(db), shuffle=True, seed=3).run([], _ctx(tmp_path))
    c = LoadChunks(db=str(db), shuffle=True).run([], _ctx(tmp_path, seed=11))
    source_order = [x.id for x in LoadChunks(db=str(db)).run([], _ctx(tmp_path))]
    assert [x.id for x in a] == [x.id for x in b]
    assert [x.id for x in a] != source_order, "shuffle=True must change the order"
    assert [x.id for x in c] != [x.id for x in a], "without its own seed the run seed (11) is used"
    assert sorted(x.id for x in a) == sorted(x.id for x in c) == sorted(source_order)
    full = [x.id for x in LoadChunks(db=str(db), shuffle=True).run([], _ctx(tmp_path))]
    cut = [x.id for x in LoadChunks(db=str(db), shuffle=True, max_chunks=4).run([], _ctx(tmp_path))]
    assert cut == full[:4] and cut != source_order[:4], "max_chunks is applied after the shuffle"


def test_missing_table_or_db_is_a_one_line_error(db, tmp_path):
    with pytest.raises(StageError, match=r"LanceDB table 'nope' not found in .*docs.lancedb; run `synthrun "
                                         r"\+recipe=ingest"):
        LoadChunks(db=str(db), tables=["nope"]).run([], _ctx(tmp_path))
    with pytest.raises(StageError, match="LanceDB database not found"):
        LoadChunks(db=str(tmp_path / "missing.lancedb")).run([], _ctx(tmp_path))
    with pytest.raises(StageError, match="bad `where` filter"):
        LoadChunks(db=str(db), where="nonexistent_column = 3").run([], _ctx(tmp_path))


def test_empty_table_is_an_error_naming_the_table(tmp_path):
    path = tmp_path / "empty.lancedb"
    lancedb.connect(str(path)).create_table("text_chunks", schema=store.schema())
    with pytest.raises(StageError, match=r"load: no chunks in table 'text_chunks' of .*empty.lancedb; "
                                         r"the table is empty") as exc:
        LoadChunks(db=str(path)).run([], _ctx(tmp_path))
    assert "\n" not in str(exc.value)


def test_filter_matching_nothing_is_an_error(db, tmp_path):
    with pytest.raises(StageError, match=r"no chunks match the filter `where: source = 'zzz'` in tables "
                                         r"'text_chunks', 'code_chunks'"):
        LoadChunks(db=str(db), tables=["text_chunks", "code_chunks"], where="source = 'zzz'").run([], _ctx(tmp_path))


def test_db_that_is_a_regular_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "file.lancedb"
    path.write_text("x")
    with pytest.raises(StageError, match="is a regular file, not a database folder"):
        LoadChunks(db=str(path)).run([], _ctx(tmp_path))
