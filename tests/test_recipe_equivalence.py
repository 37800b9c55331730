"""Every recipe that talks to an LLM still produces the same records (ids and texts) as before a refactor.

Each case runs one recipe in-process against the loopback OpenAI-compatible server
(tests/llm/fake_openai_server.py) with a fixed seed, tiny inputs and a deterministic responder (answers
derived from a hash of the request's messages), collects every stage's ``data.jsonl`` and exported
dataset files (minus volatile fields: timings, the run id, temporary paths) and compares them with
``tests/data/golden/<case>.jsonl``.

The golden files were written by this same test on the code before the LLM-stage port (commit 54af1da):
``SYNTHRUN_REGEN_GOLDEN=1 python -m pytest tests/test_recipe_equivalence.py`` rewrites them. Regenerate
only when a change of the records is intended, and say so in the commit message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from synthrun.api import run_recipe
from tests.conftest import HDF5_PASSAGES, write_chunk_db
from tests.llm.fake_openai_server import FakeOpenAIServer, default_responder
from tests.tools.fake_llm import responder_with

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
REGEN = os.environ.get("SYNTHRUN_REGEN_GOLDEN") == "1"

#: Keys whose values change from run to run (or machine to machine) without the data changing.
VOLATILE = frozenset({"run_id", "latency", "latency_s", "elapsed", "elapsed_s", "seconds", "duration_s",
                      "timings", "created", "created_at", "timestamp", "cached", "heartbeat"})

TOOL_FIELDS = {"verdict": "yes", "status": "satisfied", "clarity": 3, "accuracy": 2, "usefulness": 1,
               "difficulty": 1}

CODE_PASSAGE = ("def write_array(path):\n    import h5py\n    with h5py.File(path, 'w') as f:\n"
                "        f.create_dataset('temperature', data=[1.5, 2.5, 3.5], chunks=True)\n")


def _qa_rows() -> list[dict[str, Any]]:
    """Four QA records with source passages in provenance (what a generate stage writes)."""
    questions = ["What kinds of objects does an HDF5 file contain?", "How are HDF5 datasets like NumPy arrays?",
                 "Why is chunked storage needed in HDF5?", "Where should metadata be stored in HDF5?"]
    rows = []
    for i, ((title, text), question) in enumerate(zip(HDF5_PASSAGES, questions, strict=True)):
        rows.append({"id": f"qa-{i}", "question": question, "answer": text.split(". ")[0] + ".",
                     "question_type": "factual",
                     "provenance": {"chunk_id": f"chunk-{i}", "source": f"docs/{title.lower()}.rst",
                                    "source_text": text}})
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _chunk_db(tmp: Path) -> list[str]:
    return [f"load.db={write_chunk_db(tmp / 'chunks.lancedb')}"]


def _text_and_code_db(tmp: Path) -> list[str]:
    import lancedb

    from synthrun.ingest.store import schema

    db = write_chunk_db(tmp / "chunks.lancedb", passages=HDF5_PASSAGES[:2])
    row = {"id": "code-0", "text": CODE_PASSAGE, "source": "src/write.py", "kind": "code", "title": "write.py",
           "section": "write_array", "start": 0, "end": len(CODE_PASSAGE), "language": "python",
           "file_hash": "c0", "chunker": "test"}
    lancedb.connect(str(db)).create_table("code_chunks", data=[row], schema=schema(), mode="overwrite")
    return [f"load.db={db}"]


def _qa_file(tmp: Path) -> list[str]:
    return [f"load.path={_write_jsonl(tmp / 'qa.jsonl', _qa_rows())}"]


def _two_datasets(tmp: Path) -> list[str]:
    rows = _qa_rows()
    a = _write_jsonl(tmp / "a.jsonl", rows)
    b = _write_jsonl(tmp / "b.jsonl", [{**r, "id": r["id"] + "b", "answer": r["answer"].upper()} for r in rows[:3]])
    return [f"compare.datasets={{a: {a}, b: {b}}}"]


def _no_inputs(tmp: Path) -> list[str]:
    return []


def _labelled(dev: str) -> Callable[[Path], list[str]]:
    """Three good and three bad rows of a judge dev set (``tests/data/judge/<dev>``)."""
    def write(tmp: Path) -> list[str]:
        rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "judge" / dev).read_text().splitlines()]
        picked = [r for r in rows if r["label"] == 1][:3] + [r for r in rows if r["label"] == 0][:3]
        return [f"load.path={_write_jsonl(tmp / dev, picked)}"]

    return write


@dataclass
class Case:
    """One recipe run: its overrides, how to build its inputs, and the server's responder."""

    recipe: str
    overrides: list[str] = field(default_factory=list)
    inputs: Callable[[Path], list[str]] = _no_inputs
    responder: Callable[[dict[str, Any]], str] = default_responder
    name: str = ""

    @property
    def key(self) -> str:
        return self.name or self.recipe


NO_EMBED = ["filter.use_embeddings=false"]
CASES = [
    Case("qa", [*NO_EMBED, "generate.n_pairs=1"], _chunk_db),
    Case("qa", [*NO_EMBED, "generate.n_pairs=1", "curate.method=sampled", "curate.threshold=0"], _chunk_db,
         name="qa_sampled_judge"),
    Case("qa", [*NO_EMBED, "generate.n_pairs=2", "generate.answer_first=true", "enrich.enabled=false"], _chunk_db,
         name="qa_answer_first"),
    Case("hdf5_qa", [*NO_EMBED, "generate.target_pairs=4", "load.max_chunks=3"], _text_and_code_db),
    Case("cot", [*NO_EMBED, "load.max_chunks=3"], _chunk_db),
    Case("cot_enhance", NO_EMBED, _qa_file),
    Case("validate", [], _qa_file),
    Case("judge_eval", ["+gates.use_embeddings=false"], _labelled("qa_dev.jsonl")),
    Case("judge_eval", ["+gates.use_embeddings=false", "curate._target_=synthrun.stages.curate.Curate",
                        "~curate.method", "~curate.combine", "~curate.support_weight", "curate.threshold=5",
                        "+curate.topic=HDF5"], _labelled("qa_dev.jsonl"), name="judge_eval_curate"),
    Case("select", ["score.scorer=llm", "dedup.embedding_threshold=null"], _qa_file),
    Case("compare", ["compare.sample_size=2"], _two_datasets),
    Case("combine", [], lambda tmp: [f"combine.path=[{_write_jsonl(tmp / 'qa.jsonl', _qa_rows())}]"]),
    Case("tool_judge_eval", [], _labelled("tool_dev.jsonl"), responder=responder_with(TOOL_FIELDS)),
    Case("hdf5_tools", ["generate.n_examples=3", "filter.enabled=false", "curate.scoring=sampled"],
         responder=responder_with(TOOL_FIELDS)),
    Case("hdf5_tools", ["generate.n_examples=3", "filter.enabled=false", "curate.threshold=0"],
         responder=responder_with(TOOL_FIELDS), name="hdf5_tools_probability"),
    Case("tool_chain", ["generate.n_examples=3", "filter.enabled=false"], responder=responder_with(TOOL_FIELDS)),
    Case("tool_deps", ["generate.n_examples=3", "filter.enabled=false", "evaluate.min_score=0.5"],
         responder=responder_with(TOOL_FIELDS)),
]


def _provider(url: str) -> list[str]:
    return ["provider=vllm", f"provider.api_base={url}", "provider.model=hosted_vllm/fake", "provider.concurrency=4",
            "provider.max_retries=1", "progress=false", "seed=0"]


def _clean(value: Any, tmp: str) -> Any:
    """``value`` without volatile keys and with the temporary folder replaced by ``<tmp>``."""
    if isinstance(value, dict):
        return {k: _clean(v, tmp) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_clean(v, tmp) for v in value]
    if isinstance(value, str):
        return value.replace(tmp, "<tmp>").replace(tmp.replace("/", "_"), "<tmp>")
    return value


def collect(run_dir: Path, tmp: Path) -> list[dict[str, Any]]:
    """One row per record of every stage's data.jsonl and exported dataset file, in file order."""
    rows: list[dict[str, Any]] = []
    files = sorted(run_dir.glob("*/data.jsonl")) + sorted(run_dir.glob("*/dataset/*.jsonl"))
    for path in files:
        rel = str(path.relative_to(run_dir))
        for line in path.read_text().splitlines():
            if line.strip():
                rows.append({"file": rel, "record": _clean(json.loads(line), str(tmp))})
    return rows


def _by_file(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["file"], []).append(row["record"])
    return out


def _first_difference(want: list[dict[str, Any]], got: list[dict[str, Any]]) -> str:
    if len(want) != len(got):
        return f"{len(want)} records before, {len(got)} now; ids before {[r.get('id') for r in want]}, " \
               f"now {[r.get('id') for r in got]}"
    for i, (a, b) in enumerate(zip(want, got, strict=True)):
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            return f"record {i} ({a.get('id')}): fields {keys} differ: before {[a.get(k) for k in keys]!r:.600} " \
                   f"now {[b.get(k) for k in keys]!r:.600}"
    return ""


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_recipe_records_match_golden(case: Case, tmp_path: Path) -> None:
    inputs = case.inputs(tmp_path)
    with FakeOpenAIServer(responder=case.responder) as server:
        run_dir = run_recipe(case.recipe, [*_provider(server.base_url), f"paths.cache_dir={tmp_path / 'cache'}",
                                           *case.overrides, *inputs], output_root=tmp_path / "out")
    rows = collect(run_dir, tmp_path)
    golden = GOLDEN / f"{case.key}.jsonl"
    if REGEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        return
    assert golden.is_file(), f"no golden file {golden}: run with SYNTHRUN_REGEN_GOLDEN=1 on the reference code"
    want = _by_file([json.loads(line) for line in golden.read_text().splitlines() if line.strip()])
    got = _by_file(rows)
    assert sorted(got) == sorted(want), "the stages' output files differ"
    for name in sorted(want):
        assert not _first_difference(want[name], got[name]), f"{case.key} {name}: " + \
            _first_difference(want[name], got[name])
