"""Fine-tuning fixtures: a tiny Llama with SmolLM2's real tokenizer, and a small labelled chat dataset.

The tiny model (2 layers, hidden size 64, seeded random weights) goes through exactly the code of a real
base model (chat template, LoRA, merge, GGUF, the engine) but trains in seconds on 2 cores. Tests that
need the real SmolLM2 weights are marked slow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_QA = REPO / "recipes" / "data" / "demo_qa.jsonl"


def make_tiny_llama(folder: Path, seed: int = 0) -> Path:
    """Save a seeded 2-layer Llama with SmolLM2's tokenizer and chat template into ``folder``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from synthrun.finetune.base import resolve_base

    tokenizer = AutoTokenizer.from_pretrained(resolve_base(None).hf_folder)  # SmolLM2's, from the model cache
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, initializer_range=0.2,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_llama_session(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture
def tiny_llama(tiny_llama_session, tmp_path) -> Path:
    """A private copy (tests may write next to it)."""
    target = tmp_path / "tiny-llama"
    shutil.copytree(tiny_llama_session, target)
    return target


@pytest.fixture
def demo_rows() -> list[dict]:
    return [json.loads(line) for line in DEMO_QA.read_text().splitlines() if line.strip()]


@pytest.fixture
def small_qa(tmp_path, demo_rows) -> Path:
    """16 demo QA records (synthrun's QAPair rows with provenance chunk ids) as JSONL."""
    path = tmp_path / "qa16.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in demo_rows[:16]))
    return path
