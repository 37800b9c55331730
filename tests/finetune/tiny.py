"""Fine-tuning test helpers: a tiny Llama with SmolLM2's real tokenizer, and the demo QA file.

The tiny model (2 layers, hidden size 64, seeded random weights) goes through exactly the code of a real
base model (chat template, LoRA, merge, GGUF, the engine) but trains in seconds on 2 cores. Tests that
need the real SmolLM2 weights are marked slow.
"""

from __future__ import annotations

from pathlib import Path

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
