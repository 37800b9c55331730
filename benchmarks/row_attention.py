"""Attention in a decode pass: one call per fed token vs one call per row (``FastLlama.decode_multi``).

A row feeds 1 + its forced and guessed tokens per pass. For 8 rows at a context of ``ctx`` tokens,
each feeding ``n``, this times (same process, alternating, median of the middle runs):

* a whole ``decode_multi`` pass of the embedded model (one attention call per row, as shipped);
* the attention of that pass alone (30 layers x 8 rows, SmolLM2's 3 KV heads x 3 query heads x 64),
  once as one call per fed token over exactly its keys (the previous code) and once as one masked
  call per row (the shipped code);

and prints the attention ratio and the pass time the per-token calls would give (the pass minus the
per-row attention plus the per-token attention), with the machine load.

    python benchmarks/row_attention.py
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def median_ms(fn, reps: int = 12) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    middle = sorted(times)[reps // 4: reps - reps // 4]
    return sum(middle) / len(middle) * 1e3


def case(fast, torch, ctx: int, n: int, rng: random.Random) -> tuple[float, float, float]:
    """``(attention per token ms, attention per row ms, whole pass ms)`` for 8 rows feeding ``n`` each."""
    F = torch.nn.functional
    hk, g, d, layers = fast.kv_heads, fast.group, fast.head_dim, fast.layers_n
    cache = fast.new_cache(8, 1024)
    cache.ensure(ctx + 8 * 8)
    cache.k.normal_()
    cache.v.normal_()
    feeds = [[rng.randrange(1000, 5000) for _ in range(n)] for _ in range(8)]
    positions = [ctx + 7 * r for r in range(8)]
    q = torch.randn(8, n, hk, g, d)
    k, v = cache.k[0], cache.v[0]
    masks = []
    for p in positions:
        seen = torch.arange(p + n)[None, :] <= torch.arange(p, p + n).repeat_interleave(g)[:, None]
        masks.append(torch.zeros(seen.shape).masked_fill_(~seen, float("-inf")) if n > 1 else None)

    def per_token() -> None:
        for _ in range(layers):
            for r, p in enumerate(positions):
                for j in range(n):
                    F.scaled_dot_product_attention(q[r, j][None], k[None, r, :, :p + j + 1], v[None, r, :, :p + j + 1])

    def per_row() -> None:
        for _ in range(layers):
            for r, p in enumerate(positions):
                F.scaled_dot_product_attention(q[r].transpose(0, 1).reshape(1, hk, n * g, d), k[None, r, :, :p + n],
                                               v[None, r, :, :p + n], attn_mask=masks[r])

    def one_pass() -> None:
        fast.decode_multi(cache, feeds, positions)

    for fn in (per_token, per_row, one_pass):
        fn()  # warm-up
    return median_ms(per_token), median_ms(per_row), median_ms(one_pass)


def main() -> None:
    import torch

    from synthrun.llm.llama_fast import FastLlama
    from synthrun.llm.local_engine import default_gguf_path
    from synthrun.llm.local_weights import load_weights

    weights = load_weights(default_gguf_path())
    fast = FastLlama(weights.state, weights.config, torch)
    print(f"load before: {os.getloadavg()} on {os.cpu_count()} cores")
    rng = random.Random(0)
    with torch.inference_mode():
        for ctx in (100, 600):
            for n in (1, 2, 4):
                token_ms, row_ms, pass_ms = case(fast, torch, ctx, n, rng)
                before = pass_ms - row_ms + token_ms
                print(f"ctx {ctx:4d}, 8 rows x {n} fed: attention per token {token_ms:6.1f} ms, per row {row_ms:6.1f} ms "
                      f"({row_ms / token_ms:4.2f}x); pass {pass_ms:6.1f} ms, with per-token attention ~{before:6.1f} ms "
                      f"({pass_ms / before:4.2f}x)", flush=True)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
