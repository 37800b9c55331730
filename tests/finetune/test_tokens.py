"""Assistant-only loss masks, rendered with the base model's own chat template (SmolLM2's)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # needs the embedded SmolLM2 (its tokenizer from the de-quantized model cache)


@pytest.fixture(scope="module")
def smol_tokenizer():
    from transformers import AutoTokenizer

    from synthrun.finetune.base import resolve_base

    return AutoTokenizer.from_pretrained(resolve_base(None).hf_folder)


def test_mask_covers_every_assistant_turn_and_its_end_token(smol_tokenizer):
    from synthrun.finetune.tokens import encode_chat

    messages = [{"role": "user", "content": "What is HDF5?"}, {"role": "assistant", "content": "A file format."},
                {"role": "user", "content": "And a group?"}, {"role": "assistant", "content": "A folder."}]
    enc = encode_chat(smol_tokenizer, messages, 512)
    taught = smol_tokenizer.decode([t for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m])
    assert taught == "A file format.<|im_end|>A folder.<|im_end|>"
    whole = smol_tokenizer.decode(enc["input_ids"])
    assert whole.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")  # the template's own
    assert "<|im_start|>user\nAnd a group?<|im_end|>" in whole


def test_truncation_that_cuts_every_answer_drops_the_row(smol_tokenizer):
    from synthrun.finetune.tokens import encode_chat, encode_rows

    long_question = [{"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "ok"}]
    assert encode_chat(smol_tokenizer, long_question, 64) is None
    rows, dropped = encode_rows(smol_tokenizer, [{"messages": long_question}], 64)
    assert rows == [] and dropped == 1


def test_modelfile_translates_chatml_and_keeps_the_default_system(smol_tokenizer):
    from synthrun.finetune.modelfile import default_system, render_modelfile

    assert default_system(smol_tokenizer) == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    text = render_modelfile("./model.f16.gguf", smol_tokenizer, system_prompt="Answer about HDF5.")
    assert text.splitlines()[0] == "FROM ./model.f16.gguf"
    assert 'TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n' in text
    assert text.count("PARAMETER stop") == 2 and 'SYSTEM """Answer about HDF5."""' in text
