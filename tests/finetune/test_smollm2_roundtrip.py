"""The default base (the embedded SmolLM2-135M): a short LoRA run, merged, exported, loaded back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthrun.api import run_recipe

PROMPTS = [[{"role": "user", "content": q}] for q in (
    "What is an HDF5 file?", "How do you open a file read-only with h5py?", "What is chunked storage?",
    "How do readers see new data in SWMR mode?", "How are booleans stored in HDF5?")]


@pytest.mark.slow
def test_smollm2_f16_gguf_answers_like_the_merged_model(tmp_path, small_qa, capsys):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from synthrun.finetune.roundtrip import agreement, greedy_ids, load_gguf_model

    run_dir = run_recipe("finetune", [
        f"load.path={small_qa}", "train.max_steps=2", "train.batch_size=2", "train.r=4", "train.alpha=8",
        "train.lr=1e-3", "train.threads=1", "evaluate.max_questions=1", "evaluate.max_new_tokens=8",
        "export.ollama=never", "progress=false"], output_root=tmp_path / "out")
    torch.set_num_threads(1)
    merged_dir = run_dir / "05_merge" / "model"
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(merged_dir))
    reference = [greedy_ids(merged, tok, p, 16) for p in PROMPTS]
    export = json.loads((run_dir / "06_export" / "summary.json").read_text())["details"]
    assert export["gguf"]["q8_0"]["tensors"]["Q8_0"] > 200
    f16, gtok = load_gguf_model(Path(export["gguf"]["f16"]["path"]))
    assert gtok.encode("<|im_start|>user\nHi<|im_end|>") == tok.encode("<|im_start|>user\nHi<|im_end|>")
    assert [greedy_ids(f16, gtok, p, 16) for p in PROMPTS] == reference
    q8, _ = load_gguf_model(Path(export["gguf"]["q8_0"]["path"]))
    rate = agreement(reference, [greedy_ids(q8, gtok, p, 16) for p in PROMPTS])
    with capsys.disabled():
        print(f"\nSmolLM2 q8_0 GGUF: greedy token agreement with the merged model {rate:.3f}")
    assert rate > 0.5
