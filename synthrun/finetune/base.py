"""The base model of a fine-tune: the embedded SmolLM2, a GGUF file or a local Hugging Face folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synthrun.errors import StageError

MANIFEST = "finetune.json"


@dataclass
class BaseModelInfo:
    """Where the base model's weights are.

    Attributes:
        hf_folder: A folder ``transformers`` loads (for a GGUF: its de-quantized cache folder).
        gguf: The GGUF file it came from (its tokenizer metadata is copied on export), or None.
        name: A short name for reports.
    """

    hf_folder: str
    gguf: str | None
    name: str


def resolve_base(base_model: str | None) -> BaseModelInfo:
    """Find (and for a GGUF, de-quantize once into the model cache) the base model.

    ``None``, ``""``, ``smollm2`` or ``local/smollm2-135m`` mean the embedded SmolLM2-135M.

    Raises:
        StageError: The path does not exist or is not a model.
    """
    from synthrun.llm import local_weights as le

    if base_model in (None, "", "smollm2", le.MODEL_NAME, f"local/{le.MODEL_NAME}"):
        try:
            gguf = le.default_gguf_path()
        except FileNotFoundError as exc:
            raise StageError(f"base_model: {exc}") from None
        name = le.MODEL_NAME
    else:
        path = Path(str(base_model)).expanduser()
        if not path.exists():
            raise StageError(f"base_model: {path}: no such file or folder")
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise StageError(f"base_model: {path}: not a Hugging Face model folder (no config.json)")
            marker = path / le._CACHE_MARKER
            origin = json.loads(marker.read_text()).get("gguf") if marker.is_file() else None
            return BaseModelInfo(str(path.resolve()), origin, path.name)
        if path.suffix.lower() != ".gguf":
            raise StageError(f"base_model: {path}: expected a .gguf file or a Hugging Face model folder")
        gguf, name = path.resolve(), path.stem
    target = le.model_cache_root() / le.file_digest(gguf)
    if not (target / le._CACHE_MARKER).is_file():
        try:
            le.load_model(gguf)  # de-quantizes and writes the cache folder
        except Exception as exc:  # noqa: BLE001 - a broken GGUF raises many kinds of errors
            raise StageError(f"base_model: {gguf}: cannot load ({str(exc).splitlines()[0][:200]})") from None
    if not (target / le._CACHE_MARKER).is_file():
        raise StageError(f"base_model: could not write the de-quantized model cache {target}")
    return BaseModelInfo(str(target), str(gguf), name)


def load_base(info: BaseModelInfo) -> tuple[Any, Any]:
    """The base model (float32) and its tokenizer."""
    from synthrun.llm.local_weights import _offline_env

    _offline_env()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(info.hf_folder)
    model = AutoModelForCausalLM.from_pretrained(info.hf_folder, dtype=torch.float32)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise StageError(f"base_model: {info.hf_folder}: the tokenizer has no chat template")
    return model, tokenizer


def write_manifest(folder: Path, **data: Any) -> None:
    from synthrun.io import write_json

    write_json(folder / MANIFEST, data)


def find_artifact(ctx: Any, what: str) -> tuple[Path, dict[str, Any]]:
    """The latest earlier stage folder of this run whose manifest has ``what`` (e.g. ``adapter``)."""
    here = ctx.stage_dir.name
    for folder in sorted(ctx.run_dir.iterdir(), reverse=True):
        if folder.is_dir() and folder.name < here and (folder / MANIFEST).is_file():
            manifest = json.loads((folder / MANIFEST).read_text())
            if manifest.get(what):
                return folder, manifest
    raise StageError(f"{ctx.name}: no earlier stage of this run produced a {what} (run `train` before it)")


def base_from_manifest(manifest: dict[str, Any]) -> BaseModelInfo:
    return BaseModelInfo(**manifest["base"])


def base_to_dict(info: BaseModelInfo) -> dict[str, Any]:
    return asdict(info)
