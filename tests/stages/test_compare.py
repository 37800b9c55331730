"""Compare: statistics, near-duplicates, an LLM judge and a recommendation across dataset files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from synthrun.context import StageContext
from synthrun.formats import split_reasoning
from synthrun.io import read_jsonl, write_jsonl
from synthrun.records import CoTExample, Provenance, QAPair, Rating
from synthrun.stage import StageError
from synthrun.stages.compare import Compare, near_duplicate_rate, to_example
from synthrun.stages.export import Export
from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for

JUDGE_SCORES = {"small": 9.0, "dupes": 8.0}


def user_text(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


def judge(request: dict) -> str:
    name = re.search(r'Dataset "([^"]+)"', user_text(request)).group(1)
    n = len(re.findall(r"^Example \d+$", user_text(request), re.M))
    return json.dumps({"score": JUDGE_SCORES.get(name, 5.0), "strengths": [f"{n} samples read"],
                       "weaknesses": ["repetitive"] if name == "dupes" else [], "summary": f"verdict on {name}"})


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=judge) as srv:
        yield srv


def make_ctx(tmp_path: Path, server=None, name: str = "01_compare") -> StageContext:
    stage_dir = tmp_path / "run" / name
    stage_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(name="compare", run_id="run1", run_dir=tmp_path / "run", stage_dir=stage_dir, seed=3,
                        provider=provider_for(server.base_url) if server else {}, show_progress=False)


def rating(total: int) -> Rating:
    return Rating(clarity=min(3, total), accuracy=0, usefulness=0, difficulty=0, total=total)


def write_datasets(tmp_path: Path) -> dict[str, Path]:
    """`dupes`: 6 QA records (2 exact + 1 near duplicate), `small`: CoT + QA exported as ChatML."""
    texts = ["What is a chunk in HDF5 storage?", "How are attributes attached to groups?",
             "Which datatype does a dataset have?"]
    dupes = [QAPair(id=f"d{i}", question=q, answer=f"Answer about {q.lower()}", question_type=t,
                    rating=rating(r), provenance=Provenance(source=f"docs/{s}.rst"))
             for i, (q, t, r, s) in enumerate([
                 (texts[0], "factual", 6, "a"), (texts[1], "factual", 6, "b"), (texts[2], "analytical", 6, "a"),
                 (texts[0], "factual", 6, "a"), (texts[0], "factual", 6, "a"),
                 (texts[1].replace("groups?", "groups!"), "explanatory", 6, "b")])]
    a = tmp_path / "dupes.jsonl"
    write_jsonl(a, dupes)
    small = [CoTExample(id="c1", question="Why chunk a dataset?", reasoning=["Compression needs chunks.",
                                                                            "Resizing needs chunks."],
                        answer="For compression and resizing.", rating=rating(8),
                        provenance=Provenance(source="docs/chunking.rst")),
             QAPair(id="q1", question="What holds metadata?", answer="Attributes.", rating=rating(9),
                    provenance=Provenance(source="docs/attrs.rst"))]
    stage_dir = tmp_path / "export"
    stage_dir.mkdir()
    ctx = StageContext(name="export", run_id="r", run_dir=tmp_path, stage_dir=stage_dir, show_progress=False)
    Export(format="chatml", include_provenance=True, system_prompt="sys").run(small, ctx)
    return {"dupes": a, "small": stage_dir / "dataset" / "train.chatml.jsonl"}


def test_compares_stats_judge_and_recommends(tmp_path, server):
    paths = write_datasets(tmp_path)
    ctx = make_ctx(tmp_path, server)
    out = Compare(datasets={k: str(v) for k, v in paths.items()}, sample_size=4).run([], ctx)

    assert [r.id for r in out] == ["dataset-dupes", "dataset-small"]
    dupes, small = (r.model_dump() for r in out)
    assert dupes["count"] == 6 and dupes["format"] == "record" and dupes["rated"] == 6
    assert dupes["mean_rating"] == 6 and dupes["distinct_sources"] == 2 and dupes["source_diversity"] == 0.3333
    assert dupes["question_types"] == {"factual": 4, "analytical": 1, "explanatory": 1}
    assert dupes["near_duplicate_rate"] == 0.5  # 2 exact copies + 1 near copy of 6
    assert dupes["cot_share"] == 0
    assert small["count"] == 2 and small["format"] == "chatml" and small["mean_rating"] == 8.5
    assert small["cot_share"] == 0.5 and small["near_duplicate_rate"] == 0 and small["source_diversity"] == 1
    assert small["question_types"] == {} and small["question_openers"] == {"why": 1, "what": 1}

    assert dupes["judge"] == {"score": 8.0, "strengths": ["4 samples read"], "weaknesses": ["repetitive"],
                              "summary": "verdict on dupes", "sample_size": 4, "model": "openai/fake-model"}
    assert small["judge"]["score"] == 9.0 and small["judge"]["sample_size"] == 2
    assert dupes["overall_score"] == 3.5 and small["overall_score"] == 8.75  # mean(judge, rating) x (1 - dup)
    assert small["recommended"] is True and dupes["recommended"] is False

    # the judge saw the CoT steps read back from the exported ChatML
    small_prompt = next(user_text(r) for r in server.requests if 'Dataset "small"' in user_text(r))
    assert "Reasoning: Compression needs chunks. / Resizing needs chunks.\nA: For compression and resizing." in (
        small_prompt)

    report = json.loads((ctx.stage_dir / "report.json").read_text())
    assert report["recommended"] == "small" == ctx.summary["recommended"]
    assert report["reason"].startswith("highest overall score 8.75 (judge 9/10, mean rating 8.5, 0% near-duplicates")
    assert "then dupes: 3.5" in report["reason"]
    md = (ctx.stage_dir / "report.md").read_text()
    assert "**Recommended: small**" in md
    assert "| dupes | 6 | record | 6 | 8 | 50% | 0.3333 | 0% | 3.5 |" in md
    assert "  - - repetitive" in md


def test_list_of_paths_and_no_judge(tmp_path):
    paths = write_datasets(tmp_path)
    compare = Compare(datasets=[str(paths["dupes"]), str(paths["small"]), str(paths["dupes"])], sample_size=0)
    assert list(compare.named_paths()) == ["dupes", "train.chatml", "dupes_2"]
    out = compare.run([], make_ctx(tmp_path))
    assert all("judge" not in r.model_dump() for r in out)
    assert [r.overall_score for r in out] == [3.0, 8.5, 3.0]  # mean rating x (1 - dup)
    assert [r.recommended for r in out] == [False, True, False]


def test_an_unrated_dataset_is_scored_on_the_signals_both_have(tmp_path, server):
    """A plain ChatML export (no ratings) against a rated one: only the judge score counts for both."""
    paths = write_datasets(tmp_path)
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    ctx = StageContext(name="export", run_id="r", run_dir=tmp_path, stage_dir=plain_dir, show_progress=False)
    rows = read_jsonl(paths["dupes"])
    Export(format="chatml").run([QAPair.model_validate(r) for r in rows], ctx)
    datasets = {"small": str(plain_dir / "dataset" / "train.chatml.jsonl"), "dupes": str(paths["dupes"])}
    out = {r.name: r.model_dump() for r in Compare(datasets=datasets, sample_size=2).run([], make_ctx(tmp_path, server))}
    assert out["small"]["mean_rating"] is None and out["dupes"]["mean_rating"] == 6
    # judge only (9 and 8), times (1 - near-dup rate 0.5) for both: the rating of "dupes" is not added
    assert out["small"]["overall_score"] == 4.5 and out["dupes"]["overall_score"] == 4.0
    report = json.loads((tmp_path / "run" / "01_compare" / "report.json").read_text())
    assert report["signals"] == ["judge"] and report["recommended"] == "small"
    assert report["reason"].endswith("overall score from judge")


def test_reads_every_export_format_back():
    cot = CoTExample(id="c", question="Why?", reasoning=["one", "two"], answer="Because.", rating=rating(7),
                     provenance=Provenance(source="s.rst"))
    from synthrun.formats import convert

    for fmt in ("chatml", "sharegpt", "alpaca", "alpaca_text"):
        for style in ("steps", "think_tags"):
            row = convert(cot, fmt, system_prompt="sys", cot_style=style, include_provenance=True)
            ex = to_example(row)
            assert (ex["format"], ex["question"], ex["answer"], ex["reasoning"]) == (fmt, "Why?", "Because.",
                                                                                    ["one", "two"]), (fmt, style)
            assert (ex["source"], ex["rating"]) == ("s.rst", 7.0)
    assert to_example({"instruction": "Do x", "input": "ctx", "output": "Done"})["question"] == "Do x\n\nctx"
    assert to_example({"foo": 1}) is None
    assert split_reasoning("Plain answer\n\nAnswer: not steps") == ([], "Plain answer\n\nAnswer: not steps")


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(StageError, match="`datasets` is empty"):
        Compare().run([], make_ctx(tmp_path))
    with pytest.raises(StageError, match="dataset file not found: .*missing.jsonl"):
        Compare(datasets=[str(tmp_path / "missing.jsonl")]).run([], make_ctx(tmp_path))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a"}\n{"foo": 1}\n')
    with pytest.raises(StageError, match=r"bad.jsonl:2: row has no question/answer .*\['foo'\]"):
        Compare(datasets=[str(bad)]).run([], make_ctx(tmp_path))


def test_near_duplicate_rate():
    assert near_duplicate_rate([]) == 0 and near_duplicate_rate(["only one"]) == 0
    texts = ["The quick brown fox jumps over the lazy dog", "the quick brown fox jumps over the lazy dog!",
             "Completely different sentence about HDF5 chunks", "Another unrelated line on attributes"]
    assert near_duplicate_rate(texts) == 0.25


def test_compare_recipe(tmp_path, server):
    from synthrun.api import run_recipe

    paths = write_datasets(tmp_path)
    overrides = [f"compare.datasets={{dupes: {paths['dupes']}, small: {paths['small']}}}", "provider=vllm",
                 "provider.model=hosted_vllm/test", f"provider.api_base={server.base_url}", "progress=false",
                 "run_name=cmp"]
    run_dir = run_recipe("compare", overrides, output_root=tmp_path / "out")
    rows = read_jsonl(run_dir / "01_compare" / "data.jsonl")
    assert [(r["name"], r["recommended"]) for r in rows] == [("dupes", False), ("small", True)]
    assert "**Recommended: small**" in (run_dir / "01_compare" / "report.md").read_text()
    assert len(server.requests) == 2
    # the same command after a dataset file changed reads the files again
    write_jsonl(paths["small"], read_jsonl(paths["small"])[:1])
    run_recipe("compare", overrides, output_root=tmp_path / "out")
    assert [r["count"] for r in read_jsonl(run_dir / "01_compare" / "data.jsonl")] == [6, 1]
