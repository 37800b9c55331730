"""LoRA training with peft + TRL's SFTTrainer, checkpointed so a killed run resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("synthrun.finetune")


@dataclass
class LoraParams:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                                "gate_proj", "up_proj", "down_proj"])
    lr: float = 2e-4
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 4
    grad_accum: int = 1
    max_seq_len: int = 512
    seed: int = 0
    save_steps: int = 25
    device: str = "cpu"
    threads: int | None = None


def last_checkpoint(folder: Path) -> Path | None:
    """The checkpoint with the highest step that was completely written (has its trainer state)."""
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()
            and p.name.split("-")[-1].isdigit()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _fingerprint(params: LoraParams, base: str, encoded: list[dict[str, list[int]]]) -> str:
    blob = json.dumps({"p": {k: v for k, v in asdict(params).items() if k not in ("threads",)},
                       "base": base, "data": encoded}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _progress_callback(total_hint: int):
    from transformers import TrainerCallback

    class LogProgress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                log.info("train step %d/%d: loss %.4f", state.global_step, state.max_steps or total_hint,
                         float(logs["loss"]))

    return LogProgress()


def train_lora(model: Any, tokenizer: Any, encoded: list[dict[str, list[int]]], params: LoraParams,
               out_dir: Path, base_id: str, show_progress: bool = False) -> dict[str, Any]:
    """Train a LoRA adapter on ``encoded`` rows; the adapter is saved to ``out_dir/adapter``.

    Checkpoints go to ``out_dir/checkpoints`` every ``save_steps`` optimizer steps. When that folder
    holds a checkpoint of the same parameters, base model and data, training resumes from it;
    otherwise the folder is cleared first.

    Returns:
        Training facts: steps, resumed_from_step, train_loss, tokens, seconds, tokens_per_s.
    """
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from trl import SFTConfig, SFTTrainer

    if params.threads:
        torch.set_num_threads(params.threads)
    ckpt_dir = out_dir / "checkpoints"
    fp = _fingerprint(params, base_id, encoded)
    stamp = ckpt_dir / "fingerprint.txt"
    if ckpt_dir.exists() and (not stamp.is_file() or stamp.read_text().strip() != fp):
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fp + "\n")
    resume = last_checkpoint(ckpt_dir)
    resumed_from = int(resume.name.split("-")[-1]) if resume else 0
    if resume:
        log.info("resuming training from %s (step %d)", resume, resumed_from)

    lora = LoraConfig(r=params.r, lora_alpha=params.alpha, lora_dropout=params.dropout,
                      target_modules=list(params.target_modules), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    config = SFTConfig(
        output_dir=str(ckpt_dir), per_device_train_batch_size=params.batch_size,
        gradient_accumulation_steps=params.grad_accum, learning_rate=params.lr,
        num_train_epochs=params.epochs, max_steps=params.max_steps or -1, max_length=params.max_seq_len,
        seed=params.seed, data_seed=params.seed, save_strategy="steps", save_steps=params.save_steps,
        save_total_limit=2, logging_steps=max(1, min(10, params.save_steps)), report_to="none",
        use_cpu=params.device == "cpu", bf16=False, fp16=False, gradient_checkpointing=False,
        dataloader_num_workers=0, dataloader_pin_memory=False, disable_tqdm=not show_progress,
        include_num_input_tokens_seen="non_padding", lr_scheduler_type="linear", warmup_steps=0,
    )
    if not show_progress:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    dataset = Dataset.from_list(encoded)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[_progress_callback(0)])
    if not show_progress:  # progress goes to the log (LogProgress), not as dicts on stdout
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start
    tokens = int(trainer.state.num_input_tokens_seen or 0)
    adapter = out_dir / "adapter"
    tmp = out_dir / "adapter.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.rmtree(adapter, ignore_errors=True)
    tmp.rename(adapter)
    resumed_tokens = tokens * resumed_from / max(trainer.state.global_step, 1) if resumed_from else 0
    return {"steps": trainer.state.global_step, "resumed_from_step": resumed_from,
            "train_loss": round(float(result.training_loss), 4), "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round((tokens - resumed_tokens) / seconds, 1) if seconds else None,
            "adapter": str(adapter)}
