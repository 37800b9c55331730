"""Validate: rate everything, filter nothing, report the distribution; export then cuts with no LLM call."""

from __future__ import annotations

import json
import re

import pytest

from synthrun.io import read_jsonl, write_jsonl
from synthrun.records import CoTExample, Provenance, QAPair, Rating, Record
from synthrun.stages.export import Export
from synthrun.stages.validate import Validate, band, score_report
from tests.fixtures import FakeLLM, from_server_responder, make_ctx
from tests.llm.fake_openai_server import provider_for

# question -> (clarity, accuracy, usefulness, difficulty); "Q-bad" gets an unusable answer.
SCORES = {"Q-10": (3, 3, 2, 2), "Q-9": (3, 3, 2, 1), "Q-8": (3, 3, 1, 1), "Q-7": (3, 2, 1, 1),
          "Q-6": (2, 2, 1, 1), "Q-5": (2, 2, 1, 0), "Q-3": (1, 1, 1, 0), "Q-0": (0, 0, 0, 0)}
QUESTIONS = [*SCORES, "Q-bad"]


def user_text(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


def judge(request: dict) -> str:
    question = re.search(r"Question: (\S+)", user_text(request)).group(1)
    if question == "Q-bad":
        return "I cannot rate this."
    c, a, u, d = SCORES[question]
    return json.dumps({"reasoning": f"rated {question}", "clarity": c, "accuracy": a, "usefulness": u,
                       "difficulty": d})


@pytest.fixture
def server():
    from tests.llm.fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer(responder=judge) as srv:
        yield srv


def records() -> list[Record]:
    out: list[Record] = []
    for q in QUESTIONS:
        if q == "Q-7":
            rec = CoTExample(id=q, question=q, reasoning=["step a", "step b"], answer="a7")
        else:
            rec = QAPair(id=q, question=q, answer=f"answer {q}", provenance=Provenance(source_text="passage"))
        out.append(Record.model_validate(rec.model_dump()))
    return out


def test_rates_all_keeps_all_and_reports(tmp_path, server):

    ctx = make_ctx(tmp_path, "02_validate", provider=provider_for(server.base_url, json_retries=0))
    out = Validate().run(records(), ctx)

    assert [r.id for r in out] == QUESTIONS  # nothing dropped, order kept
    by_id = {r.id: r for r in out}
    assert isinstance(by_id["Q-7"], CoTExample) and by_id["Q-7"].reasoning == ["step a", "step b"]
    assert isinstance(by_id["Q-10"], QAPair)
    assert {r.id: (r.rating.total if r.rating else None) for r in out} == {
        "Q-10": 10, "Q-9": 9, "Q-8": 8, "Q-7": 7, "Q-6": 6, "Q-5": 5, "Q-3": 3, "Q-0": 0, "Q-bad": None}
    assert [r.quality_band for r in out] == ["PASS"] * 4 + ["NEEDS_REVIEW"] * 2 + ["FAIL"] * 2 + ["UNRATED"]

    report = json.loads((ctx.stage_dir / "report.json").read_text())
    assert report == ctx.summary["report"]
    assert report["count"] == 9 and report["rated"] == 8 and report["newly_rated"] == 9
    assert report["histogram"] == {"0": 1, "1": 0, "2": 0, "3": 1, "4": 0, "5": 1, "6": 1, "7": 1, "8": 1,
                                   "9": 1, "10": 1}
    assert report["bands"] == {"PASS": 4, "NEEDS_REVIEW": 2, "FAIL": 2, "UNRATED": 1}
    assert report["cutoffs"] == {"PASS": 7, "NEEDS_REVIEW": 5}
    assert report["mean"] == 6.0 and report["median"] == 6.5 and (report["min"], report["max"]) == (0, 10)
    assert report["kept_at_threshold"]["6"] == 5 and report["kept_at_threshold"]["8"] == 3
    assert report["criteria_mean"]["clarity"] == round((3 + 3 + 3 + 3 + 2 + 2 + 1 + 0) / 8, 3)
    assert ctx.stats.failures == {"invalid_json": 1} and ctx.failures == {"llm_invalid_json": 1}

    md = (ctx.stage_dir / "report.md").read_text()
    assert "| PASS | total >= 7 | 4 | 44% |" in md and "| NEEDS_REVIEW | 5 <= total < 7 | 2 | 22% |" in md
    assert "| 10 | 1 | ####################" in md and "| 8 | 3 |" in md


def test_custom_cutoffs_and_existing_ratings_are_kept(tmp_path):
    pre = QAPair(id="pre", question="Q-6", answer="x",
                 rating=Rating(clarity=1, accuracy=1, usefulness=1, difficulty=1, total=4))
    llm = FakeLLM(from_server_responder(judge))  # in memory: no HTTP needed here
    ctx = make_ctx(tmp_path, "02_validate", llm=llm)
    out = Validate(pass_threshold=9, review_threshold=4).run([pre, *records()[:3]], ctx)
    assert len(llm.requests) == 3  # the pre-rated record was not sent to the judge
    assert [(r.id, r.quality_band) for r in out] == [("pre", "NEEDS_REVIEW"), ("Q-10", "PASS"), ("Q-9", "PASS"),
                                                     ("Q-8", "NEEDS_REVIEW")]
    assert ctx.summary["report"]["newly_rated"] == 3
    [again] = Validate(rerate=True).run([pre], make_ctx(tmp_path, "again", llm=llm))
    assert len(llm.requests) == 4 and again.rating.total == 6 and again.quality_band == "NEEDS_REVIEW"


def test_band_and_bad_cutoffs():
    assert [band(t, 7, 5) for t in (10, 7, 6.5, 5, 4.9, None)] == [
        "PASS", "PASS", "NEEDS_REVIEW", "NEEDS_REVIEW", "FAIL", "UNRATED"]
    with pytest.raises(ValueError, match="review_threshold"):
        Validate(pass_threshold=5, review_threshold=6)
    assert score_report([])["mean"] is None and score_report([])["bands"]["PASS"] == 0


def test_validate_once_export_many_without_llm_calls(tmp_path, server):
    """Stages run directly: one validate, then exports at 6 and 8 give nested subsets, no request."""

    ctx = make_ctx(tmp_path, "02_validate", provider=provider_for(server.base_url, json_retries=0))
    rated = Validate().run(records(), ctx)
    calls = len(server.requests)
    assert calls == 9

    kept = {}
    for t in (6, 8):
        ectx = make_ctx(tmp_path, f"03_export_{t}", provider=provider_for(server.base_url))
        out = Export(threshold=t).run(rated, ectx)
        rows = read_jsonl(ectx.stage_dir / "dataset" / "train.chatml.jsonl")
        assert [r["messages"][0]["content"] for r in rows] == [r.question for r in out]
        kept[t] = {r.id for r in out}
        assert ectx.stats.calls == 0 and ectx.failures.get("unrated") == 1
    assert kept[6] == {"Q-10", "Q-9", "Q-8", "Q-7", "Q-6"} and kept[8] == {"Q-10", "Q-9", "Q-8"}
    assert kept[8] < kept[6]
    assert len(server.requests) == calls


def test_validate_recipe_then_reexport_at_other_thresholds(tmp_path, server):
    """The validate recipe: re-running with another export.threshold reuses the ratings (0 LLM calls)."""
    from synthrun.api import run_recipe

    data = tmp_path / "generated.jsonl"
    write_jsonl(data, records())
    base = [f"load.path={data}", "provider=vllm", "provider.model=hosted_vllm/test",
            f"provider.api_base={server.base_url}", "provider.max_retries=0", "+provider.json_retries=0",
            "progress=false", "run_name=v"]
    kept, calls = {}, {}
    for t in (6, 8):
        run_dir = run_recipe("validate", [*base, f"export.threshold={t}", f"export.filename=train_t{t}.jsonl"],
                             output_root=tmp_path / "out")
        metrics = json.loads((run_dir / "metrics.json").read_text())
        stages = {s["name"]: s for s in metrics["stages"]}
        calls[t] = (len(server.requests), stages["export"]["llm_calls"])
        kept[t] = [row["messages"][0]["content"]
                   for row in read_jsonl(run_dir / "03_export" / "dataset" / f"train_t{t}.jsonl")]
        assert all(row["metadata"]["rating"]["total"] >= t
                   for row in read_jsonl(run_dir / "03_export" / "dataset" / f"train_t{t}.jsonl"))
    assert calls == {6: (9, 0), 8: (9, 0)}  # the judge was asked once per record, in the first run only
    assert kept[6] == ["Q-10", "Q-9", "Q-8", "Q-7", "Q-6"] and kept[8] == ["Q-10", "Q-9", "Q-8"]
    assert set(kept[8]) < set(kept[6])
    report = json.loads((run_dir / "02_validate" / "report.json").read_text())
    assert report["kept_at_threshold"]["6"] == 5 and report["kept_at_threshold"]["8"] == 3
