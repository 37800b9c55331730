"""Fine-tuning benchmark: train tokens/s and eval loss before/after a LoRA run on the demo QA set.

    python benchmarks/finetune.py [--data recipes/data/demo_qa.jsonl] [--epochs 3] [--threads 1]

The demo set (recipes/data/demo_qa.jsonl) holds 43 hand-written QA pairs about the demo HDF5 docs, each
labelled with its source section; the eval split holds out whole sections (no question leaks). With
``--roundtrip`` the merged model is exported to GGUF (f16, q8_0) and its greedy answers to 5 prompts are
compared with the merged model's. Everything printed is measured in this one run, with the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO / "recipes" / "data" / "demo_qa.jsonl"))
    ap.add_argument("--base", default=None, help="base model (default: the embedded SmolLM2-135M)")
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--eval-fraction", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--roundtrip", action="store_true", help="also export GGUF and compare greedy answers")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from synthrun.context import StageContext
    from synthrun.finetune.base import load_base, resolve_base
    from synthrun.finetune.lora import LoraParams, train_lora
    from synthrun.finetune.tokens import encode_rows, eval_loss
    from synthrun.stages.combine import Combine
    from synthrun.stages.split import Split

    work = Path(tempfile.mkdtemp(prefix="ft_bench_"))
    ctx = StageContext(name="bench", run_id="bench", run_dir=work, stage_dir=work / "combine", show_progress=False)
    records = Split(eval_fraction=args.eval_fraction, seed=args.seed).run(Combine(path=args.data).run([], ctx), ctx)
    rows = [r.model_dump() for r in records]
    train_rows = [r for r in rows if r["split"] == "train"]
    eval_rows = [r for r in rows if r["split"] == "eval"]
    t0 = time.perf_counter()
    base = resolve_base(args.base)
    model, tok = load_base(base)
    load_s = time.perf_counter() - t0
    train_enc, _ = encode_rows(tok, train_rows, 512)
    eval_enc, _ = encode_rows(tok, eval_rows, 512)
    before = eval_loss(model, eval_enc, tok.pad_token_id)
    params = LoraParams(r=args.r, alpha=2 * args.r, lr=args.lr, epochs=args.epochs, max_steps=args.max_steps,
                        batch_size=args.batch_size, seed=args.seed, save_steps=1000, threads=args.threads)
    facts = train_lora(model, tok, train_enc, params, work / "train", base.hf_folder)
    after = eval_loss(model, eval_enc, tok.pad_token_id)
    total_s = time.perf_counter() - t0
    print(f"base model: {base.name}; data: {args.data} ({len(train_enc)} train / {len(eval_enc)} eval examples, "
          f"eval = {len({r['group'] for r in eval_rows})} held-out source sections)")
    print(f"train: {facts['steps']} steps, {facts['tokens']} tokens in {facts['seconds']:.1f} s = "
          f"{facts['tokens_per_s']:.1f} train tokens/s (threads={args.threads}); model load {load_s:.1f} s")
    print(f"eval loss (per assistant token): before {before:.4f}, after {after:.4f}, "
          f"change {(after - before) / before * 100:+.1f} %")
    import resource

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(f"wall time load+eval+train+eval: {total_s / 60:.1f} min (process CPU time "
          f"{(cpu.ru_utime + cpu.ru_stime) / 60:.1f} min); load average {os.getloadavg()}")
    if args.roundtrip:
        roundtrip(Path(facts["adapter"]), base, work)
    shutil.rmtree(work, ignore_errors=True)


def roundtrip(adapter: Path, base, work: Path) -> None:
    """Merge the adapter into a fresh base (as the merge stage does), export GGUF, compare greedy answers."""
    from peft import PeftModel

    from synthrun.finetune.base import load_base
    from synthrun.finetune.gguf_export import write_gguf
    from synthrun.finetune.roundtrip import agreement, greedy_ids, load_gguf_model

    fresh, tok = load_base(base)
    merged = PeftModel.from_pretrained(fresh, str(adapter)).merge_and_unload()
    folder = work / "merged"
    merged.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    prompts = [[{"role": "user", "content": q}] for q in (
        "What is an HDF5 file?", "How do you open a file read-only with h5py?", "What is chunked storage?",
        "How do readers see new data in SWMR mode?", "How are booleans stored in HDF5?")]
    import torch

    reference = [greedy_ids(merged, tok, p, 32) for p in prompts]
    with torch.no_grad():  # f16 GGUF = the merged 2-D weights rounded to float16 (norms stay float32)
        for param in merged.parameters():
            if param.ndim == 2:
                param.copy_(param.half().float())
    rounded = [greedy_ids(merged, tok, p, 32) for p in prompts]
    for qtype in ("f16", "q8_0"):
        info = write_gguf(folder, work / f"model.{qtype}.gguf", qtype, base.gguf, "bench")
        model, gtok = load_gguf_model(Path(info["path"]))
        got = [greedy_ids(model, gtok, p, 32) for p in prompts]
        same = sum(a == b for a, b in zip(reference, got, strict=True))
        line = (f"GGUF {qtype} ({info['bytes'] / 1e6:.0f} MB): {same}/5 greedy answers identical to the float32 "
                f"merged model, token agreement {agreement(reference, got):.3f}")
        if qtype == "f16":
            same16 = sum(a == b for a, b in zip(rounded, got, strict=True))
            line += f"; {same16}/5 identical to the merged model with its weights rounded to float16"
        print(line)
    print(json.dumps({"answers": [tok.decode(r, skip_special_tokens=True) for r in reference[:2]]})[:400])


if __name__ == "__main__":
    main()
