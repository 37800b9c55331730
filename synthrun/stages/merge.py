"""Merge the trained LoRA adapter into its base model (a plain Hugging Face model folder)."""

from __future__ import annotations

import shutil
from typing import ClassVar

from synthrun.context import StageContext
from synthrun.records import Record
from synthrun.stage import Stage


class MergeAdapter(Stage):
    """Fold the adapter of the run's ``train`` stage into the base weights.

    Writes ``<stage_dir>/model`` (safetensors + tokenizer with the base model's chat template), which
    ``transformers`` loads without peft and which the ``export`` stage turns into GGUF. Records pass through.
    """

    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        from peft import PeftModel

        from synthrun.finetune.base import base_from_manifest, find_artifact, load_base, write_manifest

        _, manifest = find_artifact(ctx, "adapter")
        base = base_from_manifest(manifest)
        model, tokenizer = load_base(base)
        merged = PeftModel.from_pretrained(model, manifest["adapter"]).merge_and_unload()
        target, tmp = ctx.stage_dir / "model", ctx.stage_dir / "model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        write_manifest(ctx.stage_dir, merged=str(target), base=manifest["base"])
        ctx.summary.update({"merged_model": str(target), "base_model": base.name})
        ctx.log.info("merged model written to %s", target)
        return records
