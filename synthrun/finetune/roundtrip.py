"""Check an exported GGUF against the merged model: same greedy tokens for the same chat prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def greedy_ids(model: Any, tokenizer: Any, messages: list[dict[str, str]], max_new_tokens: int) -> list[int]:
    import torch

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return out[0, ids["input_ids"].shape[1]:].tolist()


def load_gguf_model(gguf: Path, tokenizer: Any = None) -> tuple[Any, Any]:
    """The GGUF de-quantized by transformers (``gguf_file=``), float32, and its tokenizer (unless given)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    return model.eval(), tokenizer


def agreement(reference: list[list[int]], other: list[list[int]]) -> float:
    """Share of reference token positions where ``other`` has the same token (up to its first difference too)."""
    same = total = 0
    for ref, got in zip(reference, other, strict=True):
        total += len(ref)
        same += sum(1 for a, b in zip(ref, got, strict=False) if a == b)
    return same / total if total else 1.0
