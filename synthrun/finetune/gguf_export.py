"""Write a Llama-architecture Hugging Face model as a GGUF file (f16 or q8_0) with the ``gguf`` package.

Tensor names and the q/k permutation follow llama.cpp's ``convert_hf_to_gguf.py`` (transformers undoes
the permutation when it loads a GGUF). Tokenizer metadata is copied from the base model's GGUF when the
model came from one, else written from the Hugging Face tokenizer (byte-level BPE tokenizers).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from synthrun.errors import StageError

_LAYER_NAMES = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_TOP_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
              "lm_head.weight": "output.weight"}
FILE_TYPES = {"f32": 0, "f16": 1, "q8_0": 7}


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's rotary layout for q_proj / k_proj rows (``n_head`` = heads of that projection)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf_name: str) -> str | None:
    if hf_name in _TOP_NAMES:
        return _TOP_NAMES[hf_name]
    parts = hf_name.split(".")
    if len(parts) >= 5 and parts[0] == "model" and parts[1] == "layers" and parts[-1] == "weight":
        key = ".".join(parts[3:-1])
        if key in _LAYER_NAMES:
            return f"blk.{parts[2]}.{_LAYER_NAMES[key]}.weight"
    return None


def _load_tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise StageError(f"export: {folder}: no .safetensors weights")
    out: dict[str, np.ndarray] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                out[key] = fh.get_tensor(key).float().numpy()
    return out


def _rope_theta(config: dict[str, Any]) -> float:
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    return float(config.get("rope_theta") or params.get("rope_theta") or 10000.0)


@lru_cache(maxsize=2)
def tokenizer_fields(base_gguf: str) -> tuple[tuple[str, Any, Any, Any], ...]:
    """The ``tokenizer.*`` metadata of a GGUF as (key, value, type, array item type); read once per file."""
    from gguf import GGUFReader, GGUFValueType

    reader = GGUFReader(base_gguf)
    out = []
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            vtype = field.types[0]
            out.append((key, field.contents(), vtype, field.types[-1] if vtype == GGUFValueType.ARRAY else None))
    return tuple(out)


def _copy_tokenizer_fields(writer: Any, base_gguf: Path) -> None:
    for key, value, vtype, sub in tokenizer_fields(str(base_gguf)):
        writer.add_key_value(key, value, vtype, sub_type=sub)


def _write_hf_tokenizer(writer: Any, folder: Path) -> None:
    import gguf
    from transformers import AutoTokenizer

    tok_json = folder / "tokenizer.json"
    spec = json.loads(tok_json.read_text(encoding="utf-8")) if tok_json.is_file() else {}
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        raise StageError(f"export: {folder}: only byte-level BPE tokenizers can be written to GGUF here; "
                         "start from a GGUF base model instead")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    vocab = tokenizer.get_vocab()
    size = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [gguf.TokenType.UNUSED] * size
    added = {t["content"]: t for t in spec.get("added_tokens", [])}
    for text, idx in vocab.items():
        tokens[idx] = text
        info = added.get(text)
        types[idx] = (gguf.TokenType.NORMAL if info is None else
                      gguf.TokenType.CONTROL if info.get("special") else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for attr, add in (("bos_token_id", writer.add_bos_token_id), ("eos_token_id", writer.add_eos_token_id),
                      ("unk_token_id", writer.add_unk_token_id), ("pad_token_id", writer.add_pad_token_id)):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            add(int(value))
    writer.add_add_bos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def write_gguf(folder: Path, out_path: Path, qtype: str, base_gguf: str | None, name: str) -> dict[str, Any]:
    """Write the model in ``folder`` to ``out_path`` (through a temp file, so a failure keeps an old file).

    Args:
        folder: A merged Hugging Face Llama-architecture model folder.
        qtype: ``f16`` (2-D weights in float16, norms float32), ``q8_0`` or ``f32``.
        base_gguf: GGUF whose tokenizer metadata is copied (None: written from the HF tokenizer).
        name: ``general.name``.
    """
    import gguf

    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") not in ("llama", "mistral") and config.get("architectures") != ["LlamaForCausalLM"]:
        raise StageError(f"export: {folder}: model type {config.get('model_type')!r} is not supported "
                         "(GGUF export handles Llama-architecture models such as SmolLM2)")
    tensors = _load_tensors(folder)
    n_head, n_kv = int(config["num_attention_heads"]), int(config.get("num_key_value_heads") or config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(str(tmp), "llama")
    writer.add_name(name)
    writer.add_context_length(int(config.get("max_position_embeddings", 2048)))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_rope_dimension_count(int(config.get("head_dim") or hidden // n_head))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-5)))
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_file_type(FILE_TYPES[qtype])
    if qtype == "q8_0":
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if base_gguf and Path(base_gguf).is_file():
        _copy_tokenizer_fields(writer, Path(base_gguf))
    else:
        _write_hf_tokenizer(writer, folder)
    tied = bool(config.get("tie_word_embeddings"))
    counts: dict[str, int] = {}
    for hf_name, data in tensors.items():
        target = gguf_name(hf_name)
        if target is None:
            if hf_name.endswith("rotary_emb.inv_freq"):
                continue
            raise StageError(f"export: tensor {hf_name} has no GGUF name (not a Llama model?)")
        if target == "output.weight" and tied:
            continue
        if target.endswith("attn_q.weight"):
            data = permute_qk(data, n_head)
        elif target.endswith("attn_k.weight"):
            data = permute_qk(data, n_kv)
        if data.ndim == 1 or qtype == "f32":
            kind = gguf.GGMLQuantizationType.F32
            writer.add_tensor(target, data.astype(np.float32))
        elif qtype == "f16" or data.shape[-1] % 32:
            kind = gguf.GGMLQuantizationType.F16
            writer.add_tensor(target, data.astype(np.float16))
        else:
            kind = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(target, gguf.quants.quantize(data.astype(np.float32), kind), raw_dtype=kind)
        counts[kind.name] = counts.get(kind.name, 0) + 1
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"path": str(out_path), "type": qtype, "bytes": out_path.stat().st_size, "tensors": counts}
