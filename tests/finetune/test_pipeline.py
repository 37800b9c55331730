"""The whole loop on a tiny Llama: combine -> split -> LoRA -> evaluate -> merge -> GGUF -> served back.

One recipe run (10 steps on 16 rows) is shared by the tests of this module; the GGUF files it writes
are loaded back with transformers (``gguf_file=``), with synthrun's engine and as ``provider=local``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthrun.api import run_recipe

PROMPTS = [[{"role": "user", "content": q}] for q in (
    "What is HDF5?", "How do you open a file with h5py?", "What is a chunk?", "Explain SWMR mode.",
    "Which compression filters exist?")]


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory, tiny_llama_session):
    root = tmp_path_factory.mktemp("ft")
    data = root / "qa16.jsonl"
    from tests.finetune.tiny import DEMO_QA

    data.write_text("".join(DEMO_QA.read_text().splitlines(keepends=True)[:16]))
    run_dir = run_recipe("finetune", [
        f"load.path={data}", f"train.base_model={tiny_llama_session}", "train.max_steps=10",
        "train.batch_size=2", "train.lr=0.01", "train.r=8", "train.alpha=16", "train.threads=1",
        "train.save_steps=5", "split.eval_fraction=0.25", "evaluate.max_questions=2",
        "evaluate.max_new_tokens=8", "export.ollama=never", "progress=false"], output_root=root / "out")
    return run_dir


def _summary(run_dir: Path, stage: str) -> dict:
    return json.loads(next(run_dir.glob(f"*_{stage}/summary.json")).read_text())["details"]


def test_training_lowers_eval_loss_and_reports_it(tuned_run):
    train = _summary(tuned_run, "train")
    assert train["steps"] == 10 and train["tokens"] > 0 and train["tokens_per_s"] > 0
    assert (tuned_run / "03_train" / "adapter" / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in (tuned_run / "03_train" / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-10", "checkpoint-5"]
    ev = _summary(tuned_run, "evaluate")
    assert ev["eval_loss_after"] < ev["eval_loss_before"]
    split = _summary(tuned_run, "split")
    assert ev["eval_examples"] == split["eval"] > 0
    report = (tuned_run / "04_evaluate" / "report.md").read_text()
    assert f"before {ev['eval_loss_before']:.4f}, after {ev['eval_loss_after']:.4f}" in report
    assert report.count("\n| 1 |") == 1 and "| base model | tuned model |" in report


@pytest.fixture(scope="module")
def merged_answers(tuned_run):
    """Greedy token ids of the merged model, unchanged and with its weights rounded to float16."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from synthrun.finetune.roundtrip import greedy_ids

    torch.set_num_threads(1)
    merged_dir = tuned_run / "05_merge" / "model"
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(merged_dir))
    exact = [greedy_ids(merged, tok, p, 12) for p in PROMPTS]
    with torch.no_grad():
        for param in merged.parameters():
            if param.ndim == 2:
                param.copy_(param.half().float())
    rounded = [greedy_ids(merged, tok, p, 12) for p in PROMPTS]
    return {"tokenizer": tok, "exact": exact, "f16": rounded}


def test_gguf_round_trip_matches_the_merged_model(tuned_run, merged_answers, capsys):
    """f16 weights carry the merged model's weights rounded to float16: the greedy tokens must be the same
    as the merged model's with that rounding (a random tiny model has near-ties that plain rounding flips;
    the SmolLM2 test compares with the unrounded model). This checks tensor names, the q/k permutation and
    the tokenizer written from the HF tokenizer (this base has no GGUF)."""
    from synthrun.finetune.roundtrip import agreement, greedy_ids, load_gguf_model

    tok = merged_answers["tokenizer"]
    f16_model, gtok = load_gguf_model(tuned_run / "06_export" / "model.f16.gguf")
    assert gtok.encode("Hi <|im_end|>\nthere") == tok.encode("Hi <|im_end|>\nthere")
    assert gtok.chat_template == tok.chat_template
    f16_got = [greedy_ids(f16_model, gtok, p, 12) for p in PROMPTS]
    assert f16_got == merged_answers["f16"]
    q8_model, _ = load_gguf_model(tuned_run / "06_export" / "model.q8_0.gguf", tokenizer=gtok)
    q8_rate = agreement(merged_answers["exact"], [greedy_ids(q8_model, gtok, p, 12) for p in PROMPTS])
    with capsys.disabled():
        print(f"\ntiny model: token agreement with the merged model: f16 "
              f"{agreement(merged_answers['exact'], f16_got):.2f}, q8_0 {q8_rate:.2f}")
    assert 0 < q8_rate <= 1


def test_exported_gguf_runs_in_the_engine_and_as_provider(tuned_run, merged_answers, monkeypatch, tmp_path):
    from synthrun.llm.client import LLMClient
    from synthrun.llm.local_engine import LocalEngine

    monkeypatch.setenv("SYNTHRUN_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYNTHRUN_LOCAL_THREADS", "1")
    gguf = tuned_run / "06_export" / "model.f16.gguf"
    tok = merged_answers["tokenizer"]
    expected = [tok.decode(ids, skip_special_tokens=True) for ids in merged_answers["f16"][:2]]
    engine = LocalEngine.get(gguf)
    try:
        assert [engine.generate(p, temperature=0, max_tokens=12).text for p in PROMPTS[:2]] == expected
        client = LLMClient({"model": f"local/{gguf}", "temperature": 0, "max_tokens": 12}, show_progress=False)
        answer = client.complete(PROMPTS[0])
        assert answer.error is None and answer.text == expected[0]
    finally:
        engine.close()


def test_modelfile_and_ollama_command(tuned_run):
    modelfile = (tuned_run / "06_export" / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./model.f16.gguf\n")
    assert '<|im_start|>{{ .Role }}' in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM' in modelfile
    export = _summary(tuned_run, "export")
    assert export["ollama_command"] == f"ollama create synthrun-tuned -f {tuned_run / '06_export' / 'Modelfile'}"
    assert export["serve_with"] == f"provider=local provider.model=local/{tuned_run / '06_export' / 'model.f16.gguf'}"
