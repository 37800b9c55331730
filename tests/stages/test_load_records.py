"""LoadRecords: JSONL, JSON arrays, Parquet and `datasets` folders become Records."""

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthrun.context import StageContext
from synthrun.stage import StageError
from synthrun.stages.load_records import LoadRecords

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "select" / "examples.jsonl"
ROWS = [
    {"id": 7, "question": "What is HDF5?", "answer": "A file format.", "meta": {"lang": "en"}},
    {"question": "What is a chunk?", "answer": "A block of a dataset.", "score": 3.5},
    {"question": "What is a chunk?", "answer": "A block of a dataset.", "score": 3.5},
]


def _ctx(tmp_path: Path) -> StageContext:
    return StageContext(name="load", run_id="t", run_dir=tmp_path, stage_dir=tmp_path, show_progress=False)


def _check(records, source: str):
    assert [r.question for r in records] == [r["question"] for r in ROWS]
    assert records[0].id == "7" and records[0].meta == {"lang": "en"}
    assert records[1].score == 3.5 and records[1].id.startswith("r")
    assert records[2].id == records[1].id + "-2", "identical rows still get unique ids"
    assert all(r.provenance.source == source and r.provenance.stage == "load" for r in records)


def test_jsonl_file_with_extra_fields_and_stable_ids(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n")
    records = LoadRecords(path=str(path)).run([], _ctx(tmp_path))
    _check(records, str(path))
    again = LoadRecords(path=str(path)).run([], _ctx(tmp_path))
    assert [r.id for r in again] == [r.id for r in records]


def test_json_array_parquet_gzip_and_datasets_folder(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(ROWS, indent=1))
    _check(LoadRecords(path=str(tmp_path / "a.json")).run([], _ctx(tmp_path)), str(tmp_path / "a.json"))

    with gzip.open(tmp_path / "z.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in ROWS)
    _check(LoadRecords(path=str(tmp_path / "z.jsonl.gz")).run([], _ctx(tmp_path)), str(tmp_path / "z.jsonl.gz"))

    table = pa.Table.from_pylist([{**r, "id": str(r["id"]) if "id" in r else None} for r in ROWS])
    pq.write_table(table, tmp_path / "p.parquet")
    recs = LoadRecords(path=str(tmp_path / "p.parquet")).run([], _ctx(tmp_path))
    assert [r.question for r in recs] == [r["question"] for r in ROWS]
    assert recs[0].id == "7" and recs[0].meta == {"lang": "en"} and recs[2].id == recs[1].id + "-2"

    from datasets import Dataset, DatasetDict

    flat = [{"question": r["question"], "answer": r["answer"]} for r in ROWS]
    Dataset.from_list(flat).save_to_disk(str(tmp_path / "hf"))
    recs = LoadRecords(path=str(tmp_path / "hf"), limit=2).run([], _ctx(tmp_path))
    assert [r.answer for r in recs] == ["A file format.", "A block of a dataset."]
    DatasetDict({"train": Dataset.from_list(flat[:1]), "test": Dataset.from_list(flat[1:])}).save_to_disk(
        str(tmp_path / "hfdict"))
    assert len(LoadRecords(path=str(tmp_path / "hfdict")).run([], _ctx(tmp_path))) == 1
    assert len(LoadRecords(path=str(tmp_path / "hfdict"), split="test").run([], _ctx(tmp_path))) == 2
    with pytest.raises(StageError, match=r"has splits \['train', 'test'\]"):
        LoadRecords(path=str(tmp_path / "hfdict"), split="dev").run([], _ctx(tmp_path))


def test_limit_stops_before_a_later_bad_line(tmp_path):
    path = tmp_path / "d.jsonl"
    shutil.copy(EXAMPLES, path)
    with open(path, "a") as fh:
        fh.write("{broken\n")
    records = LoadRecords(path=str(path), limit=5).run([], _ctx(tmp_path))
    assert [r.id for r in records] == ["py-1", "py-1-dup", "py-2", "py-3", "py-4"]
    assert records[0].rating == {"total": 8}


def test_custom_id_field(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"uid": "u1", "id": 5, "text": "x"}) + "\n")
    (rec,) = LoadRecords(path=str(path), id_field="uid").run([], _ctx(tmp_path))
    assert (rec.id, rec.uid, rec.original_id) == ("u1", "u1", 5)


def test_errors_are_one_line_with_file_and_line(tmp_path):
    with pytest.raises(StageError, match=r"nope\.jsonl: file not found"):
        LoadRecords(path=str(tmp_path / "nope.jsonl")).run([], _ctx(tmp_path))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n\n{"a": 2,}\n')
    with pytest.raises(StageError, match=r"bad\.jsonl:3: not valid JSON"):
        LoadRecords(path=str(bad)).run([], _ctx(tmp_path))
    lst = tmp_path / "list.jsonl"
    lst.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(StageError, match=r"list\.jsonl:2: expected a JSON object, got list"):
        LoadRecords(path=str(lst)).run([], _ctx(tmp_path))
    obj = tmp_path / "obj.json"
    obj.write_text('[{"a": 1}, 3]')
    with pytest.raises(StageError, match=r"obj\.json: item 1: expected a JSON object, got int"):
        LoadRecords(path=str(obj)).run([], _ctx(tmp_path))
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet")
    with pytest.raises(StageError, match=r"fake\.parquet: not a readable Parquet file"):
        LoadRecords(path=str(fake)).run([], _ctx(tmp_path))
    prov = tmp_path / "prov.jsonl"
    prov.write_text(json.dumps({"provenance": {"chunk_id": 5}}) + "\n")
    with pytest.raises(StageError, match=r"prov\.jsonl:1: field provenance\.chunk_id"):
        LoadRecords(path=str(prov)).run([], _ctx(tmp_path))
