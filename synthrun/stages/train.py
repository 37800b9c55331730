"""LoRA fine-tuning of a base model on the train split (peft + TRL SFTTrainer, CPU by default)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from synthrun.context import StageContext
from synthrun.records import Record
from synthrun.stage import Stage, StageError


class Train(Stage):
    """Train a LoRA adapter on the records marked ``split: train`` (all records when none is marked).

    The loss covers the assistant turns only, rendered with the base model's own chat template.
    The adapter goes to ``<stage_dir>/adapter``, checkpoints to ``<stage_dir>/checkpoints``; a killed
    training resumes from its last checkpoint when the same command runs again.

    Attributes:
        base_model: ``null`` (the embedded SmolLM2-135M), a ``.gguf`` file or a Hugging Face model folder.
        r / alpha / dropout / target_modules: The LoRA adapter.
        lr, epochs, max_steps (overrides epochs), batch_size, grad_accum, max_seq_len, seed: Training.
        save_steps: Checkpoint every this many optimizer steps.
        device: ``cpu`` or ``cuda`` (same code).
        threads: torch CPU threads (null: torch's default).
    """

    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    base_model: str | None = None
    r: int = Field(default=16, gt=0)
    alpha: int = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"], min_length=1)
    lr: float = Field(default=2e-4, gt=0)
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    batch_size: int = Field(default=4, gt=0)
    grad_accum: int = Field(default=1, gt=0)
    max_seq_len: int = Field(default=512, ge=16)
    seed: int = 0
    save_steps: int = Field(default=25, gt=0)
    device: Literal["cpu", "cuda"] = "cpu"
    threads: int | None = Field(default=None, gt=0)

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        from synthrun.finetune.base import base_to_dict, load_base, resolve_base, write_manifest
        from synthrun.finetune.lora import LoraParams, train_lora
        from synthrun.finetune.tokens import encode_rows

        rows = [r.model_dump() for r in records]
        train = [r for r in rows if r.get("split", "train") == "train"]
        if not train:
            raise StageError("train: no training examples (the input has no rows marked split=train)")
        if any(not isinstance(r.get("messages"), list) for r in train):
            raise StageError("train: input rows have no `messages`; put the `combine` and `split` stages before it")
        base = resolve_base(self.base_model)
        model, tokenizer = load_base(base)
        encoded, dropped = encode_rows(tokenizer, train, self.max_seq_len)
        if dropped:
            ctx.fail("no_assistant_tokens_within_max_seq_len", dropped)
        if not encoded:
            raise StageError(f"train: no example keeps an assistant token within max_seq_len={self.max_seq_len}")
        missing = [m for m in self.target_modules if not any(n.endswith(f".{m}") for n, _ in model.named_modules())]
        if missing:
            raise StageError(f"train: target_modules {missing} are not layers of {base.name}")
        params = LoraParams(r=self.r, alpha=self.alpha, dropout=self.dropout, target_modules=self.target_modules,
                            lr=self.lr, epochs=self.epochs, max_steps=self.max_steps, batch_size=self.batch_size,
                            grad_accum=self.grad_accum, max_seq_len=self.max_seq_len, seed=self.seed,
                            save_steps=self.save_steps, device=self.device, threads=self.threads)
        if self.device == "cuda":
            model = model.to("cuda")
        ctx.log.info("training LoRA r=%d on %d examples (base %s)", self.r, len(encoded), base.name)
        facts = train_lora(model, tokenizer, encoded, params, ctx.stage_dir, base.hf_folder, ctx.show_progress)
        write_manifest(ctx.stage_dir, adapter=facts["adapter"], base=base_to_dict(base),
                       max_seq_len=self.max_seq_len, train=facts)
        ctx.summary.update({"base_model": base.name, "examples": len(encoded), **facts})
        return records
