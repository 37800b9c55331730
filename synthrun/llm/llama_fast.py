"""A lean Llama forward pass for the embedded engine: slot KV cache, block prefill, prefix reuse.

transformers' generic forward costs the embedded SmolLM2 most of its decode time on CPU: the
``DynamicCache`` grows by ``torch.cat`` (every step copies the whole cache), grouped-query attention
repeats the key/value heads for every step, and a 4-D mask is rebuilt per call. :class:`FastLlama`
runs the same weights, read by name (no transformers model needed; the float32 projections keep a
oneDNN-reordered copy, ~0.5 GB) with:

* a preallocated per-slot KV cache (:class:`SlotCache`): a decode step writes one position per row
  in place; rows of a batch live in slots ``0..B-1``, so attention reads a view, never a copy;
* grouped-query attention without repeating heads (the query heads of one KV head are folded into
  the query-length axis);
* fused q/k/v and gate/up projections (one matrix product each);
* prompts prefilled in segments that end at message boundaries and every 64 tokens; the keys/values
  of every segment but the last are kept in an LRU (:class:`PrefixCache`) keyed by the tokens up to
  its end, so a system prompt, or a passage, repeated across requests is computed once. The segments
  depend only on the prompt, so its numbers are the same whether a prefix came from the cache or not;
* float32 projections through oneDNN with weights reordered once (:class:`PackedLinear`): on the
  AMD CPUs measured here MKL's sgemm is 2-3x slower at decode batch sizes, and a row's oneDNN
  result does not depend on the other rows of the batch;
* optionally (``quantize="int8"``) int8 weights with per-row activation scales (see
  :class:`Int8Linear`), which keeps every row's result independent of the other rows in the batch.

torch is passed in by the caller (this module imports nothing heavy at import time).
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

PREFIX_CACHE_BYTES = 192 << 20
PREFIX_BLOCK = 64  # prompts are also cut every 64 tokens, so a shared start past the system prompt is reused
PREFILL_ROWS = 512  # most prompt tokens computed in one pass (oneDNN's per-row cost falls ~25 % from 64 to 512 rows)


class SlotCache:
    """Keys and values of ``slots`` sequences: tensors ``[layers, slots, kv_heads, capacity, head_dim]``."""

    def __init__(self, torch: Any, layers: int, slots: int, kv_heads: int, head_dim: int, dtype: Any,
                 capacity: int = 512):
        self.torch = torch
        self.shape = (layers, slots, kv_heads, capacity, head_dim)
        self.k = torch.zeros(self.shape, dtype=dtype)
        self.v = torch.zeros(self.shape, dtype=dtype)

    @property
    def slots(self) -> int:
        return self.shape[1]

    @property
    def capacity(self) -> int:
        return self.shape[3]

    def ensure(self, length: int) -> None:
        """Grows the capacity (doubling) so that ``length`` positions fit."""
        if length <= self.capacity:
            return
        cap = self.capacity
        while cap < length:
            cap *= 2
        layers, slots, heads, old, dim = self.shape
        for name in ("k", "v"):
            grown = self.torch.zeros((layers, slots, heads, cap, dim), dtype=self.k.dtype)
            grown[:, :, :, :old] = getattr(self, name)
            setattr(self, name, grown)
        self.shape = (layers, slots, heads, cap, dim)

    def move(self, src: int, dst: int, length: int) -> None:
        """Copies the first ``length`` positions of slot ``src`` into slot ``dst``."""
        self.k[:, dst, :, :length] = self.k[:, src, :, :length]
        self.v[:, dst, :, :length] = self.v[:, src, :, :length]


class PrefixCache:
    """LRU of prompt blocks' keys/values, keyed by a chained hash of the tokens up to the block's end."""

    def __init__(self, max_bytes: int = PREFIX_CACHE_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self._items: OrderedDict[bytes, tuple[Any, Any]] = OrderedDict()

    @staticmethod
    def chain(previous: bytes, tokens: list[int]) -> bytes:
        data = previous + b"|" + ",".join(map(str, tokens)).encode()
        return hashlib.blake2b(data, digest_size=16).digest()

    def get(self, key: bytes) -> tuple[Any, Any] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return item

    def put(self, key: bytes, k: Any, v: Any) -> None:
        if key in self._items or self.max_bytes <= 0:
            return
        self._items[key] = (k, v)
        self.bytes += 2 * k.numel() * k.element_size()
        while self.bytes > self.max_bytes and self._items:
            _, (ok, _ov) = self._items.popitem(last=False)
            self.bytes -= 2 * ok.numel() * ok.element_size()


class FastLlama:
    """Decode and prefill passes of a Llama model (e.g. SmolLM2), from its tensors by name.

    Args:
        state: The model's tensors under transformers' names (``model.layers.0.self_attn.q_proj.weight``,
            ...), e.g. read from its safetensors file or ``model.state_dict()``.
        config: The model's config as a dict (its ``config.json``).
        torch: The torch module.
        quantize: None or ``"int8"`` (see :class:`Int8Linear`).
    """

    def __init__(self, state: dict[str, Any], config: dict[str, Any], torch: Any, quantize: str | None = None):
        self.torch = torch
        if quantize not in (None, "", "none", "int8"):
            raise ValueError(f"quantize must be none or int8, got {quantize!r}")
        self.quantize = "int8" if quantize == "int8" else None
        if any(k.endswith(".bias") for k in state):
            raise ValueError("projection biases are not supported by the fast path")
        self.layers_n = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.kv_heads = int(config.get("num_key_value_heads") or self.heads)
        self.head_dim = int(config.get("head_dim") or int(config["hidden_size"]) // self.heads)
        self.group = self.heads // self.kv_heads
        self.eps = float(config["rms_norm_eps"])
        self.embed = state["model.embed_tokens.weight"]
        self.dtype = self.embed.dtype
        self.lm_head = state.get("lm_head.weight", self.embed)  # tied to the embeddings when absent
        self.final_norm = state["model.norm.weight"]
        self.layers = [self._fuse(state, f"model.layers.{i}.") for i in range(self.layers_n)]
        wrap: Any = Int8Linear if self.quantize == "int8" else PackedLinear if PackedLinear.usable(torch, self.dtype) else None
        if wrap is not None:
            self.layers = [tuple(wrap(w, torch) if j in (1, 2, 4, 5) else w for j, w in enumerate(layer))
                           for layer in self.layers]
            self.lm_head = wrap(self.lm_head, torch)
        inv_freq, scale = rope_frequencies(config, torch)
        inv_freq = inv_freq.to(self.dtype).float()  # rounded like the buffer of a transformers model cast to dtype
        positions = torch.arange(int(config.get("max_position_embeddings") or 8192), dtype=torch.float32)
        freqs = positions[:, None] * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos = (emb.cos() * scale).to(self.dtype)
        self.sin = (emb.sin() * scale).to(self.dtype)
        self.prefix = PrefixCache()

    def _fuse(self, state: dict[str, Any], prefix: str) -> tuple[Any, ...]:
        """One layer's weights, with q/k/v and gate/up fused into one matrix each."""
        torch = self.torch
        q, k, v = (state[f"{prefix}self_attn.{n}_proj.weight"] for n in "qkv")
        gate, up = state[f"{prefix}mlp.gate_proj.weight"], state[f"{prefix}mlp.up_proj.weight"]
        return (state[f"{prefix}input_layernorm.weight"], torch.cat([q, k, v]).contiguous(),
                state[f"{prefix}self_attn.o_proj.weight"], state[f"{prefix}post_attention_layernorm.weight"],
                torch.cat([gate, up]).contiguous(), state[f"{prefix}mlp.down_proj.weight"],
                q.shape[0], k.shape[0], gate.shape[0])

    def new_cache(self, slots: int, capacity: int = 512) -> SlotCache:
        return SlotCache(self.torch, self.layers_n, slots, self.kv_heads, self.head_dim, self.dtype, capacity)

    def _norm(self, x: Any, weight: Any) -> Any:
        torch = self.torch
        var = x.pow(2).mean(-1, keepdim=True)
        return weight * (x * torch.rsqrt(var + self.eps))

    @staticmethod
    def _rope(x: Any, cos: Any, sin: Any, torch: Any) -> Any:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def _lin(self, x: Any, w: Any) -> Any:
        return self.torch.nn.functional.linear(x, w) if isinstance(w, self.torch.Tensor) else w(x)

    def _mlp(self, x: Any, layer: tuple[Any, ...]) -> Any:
        F = self.torch.nn.functional
        _, _, _, post_norm, gate_up, down, _, _, ng = layer
        gu = self._lin(self._norm(x, post_norm), gate_up)
        return x + self._lin(F.silu(gu[..., :ng]) * gu[..., ng:], down)

    # ------------------------------------------------------------------ decode

    def decode(self, cache: SlotCache, tokens: list[int], positions: list[int]) -> Any:
        """One token for each of the rows in slots ``0..B-1``; returns their next-token logits ``[B, V]``."""
        return self.decode_multi(cache, [[t] for t in tokens], positions)

    def decode_multi(self, cache: SlotCache, feeds: Sequence[Sequence[int]], positions: Sequence[int]) -> Any:
        """Feeds ``feeds[r]`` (one or more tokens) to the row in slot ``r`` at positions ``positions[r]..``.

        Returns the logits after every fed token, rows concatenated: ``[sum(len(f) for f in feeds), V]``.
        Projections run on all fed tokens at once (a row's result does not depend on the other rows).
        Attention runs once per row over exactly that row's keys: a row feeding one token makes the
        call a lone one-token step makes; a row feeding several folds them into the query axis, each
        masked past its own position (one call instead of one per token: ~3x less attention time at
        four tokens). So a token's numbers never depend on its batch-mates or their lengths; with
        several tokens fed they equal the one-token steps' up to rounding (~1e-6), and since a row's
        guessed and forced tokens depend only on its own tokens, a seeded answer is the same in any
        batch.
        """
        torch = self.torch
        hk, g, d = self.kv_heads, self.group, self.head_dim
        lens = [len(f) for f in feeds]
        flat_pos = [p + j for p, n in zip(positions, lens, strict=True) for j in range(n)]
        cache.ensure(max(flat_pos) + 1)
        pos = torch.tensor(flat_pos, dtype=torch.long)
        slots = torch.tensor([r for r, n in enumerate(lens) for _ in range(n)], dtype=torch.long)
        total = len(flat_pos)
        # per row: (first fed row, tokens fed, keys up to its last token, mask of its later keys or None)
        spans, row = [], 0
        for p, n in zip(positions, lens, strict=True):
            mask = None
            if n > 1:  # query j*g+h (fed token j, head h of the group) sees the keys up to position p+j
                seen = torch.arange(p + n)[None, :] <= torch.arange(p, p + n).repeat_interleave(g)[:, None]
                mask = torch.zeros(seen.shape, dtype=self.dtype).masked_fill_(~seen, float("-inf"))
            spans.append((row, n, p + n, mask))
            row += n
        cos = self.cos[pos][:, None, None, :]
        sin = self.sin[pos][:, None, None, :]
        x = self.embed[torch.tensor([t for f in feeds for t in f], dtype=torch.long)]
        for i, layer in enumerate(self.layers):
            in_norm, qkv_w, o_w, _, _, _, nq, nk, _ = layer
            qkv = self._lin(self._norm(x, in_norm), qkv_w)
            q = self._rope(qkv[:, :nq].view(total, hk, g, d), cos, sin, torch)
            k = self._rope(qkv[:, nq:nq + nk].view(total, hk, 1, d), cos, sin, torch)
            keys, values = cache.k[i], cache.v[i]
            keys[slots, :, pos] = k[:, :, 0]
            values[slots, :, pos] = qkv[:, nq + nk:].view(total, hk, d)
            x = self._mlp(x + self._lin(self._attend(q, keys, values, spans), o_w), layer)
        return self._lin(self._norm(x, self.final_norm), self.lm_head)

    def _attend(self, q: Any, keys: Any, values: Any, spans: list[tuple[int, int, int, Any]]) -> Any:
        """One attention call per row: ``q`` is ``[fed tokens, kv heads, group, head dim]``, row ``r``'s
        keys/values are in slot ``r``; ``spans[r]`` as built in :meth:`decode_multi`. Returns ``[fed tokens, heads * head dim]``."""
        F = self.torch.nn.functional
        hk, g, d = self.kv_heads, self.group, self.head_dim
        outs = []
        for slot, (first, n, end, mask) in enumerate(spans):
            # a lone token's query heads form the query axis; several tokens' are laid out token by token
            rows = q[first][None] if n == 1 else q[first:first + n].transpose(0, 1).reshape(1, hk, n * g, d)
            # 4-D inputs take torch's fused CPU kernel (3-D ones took the unfused path: ~2x the time)
            out = F.scaled_dot_product_attention(rows, keys[None, slot, :, :end], values[None, slot, :, :end],
                                                 attn_mask=mask)
            outs.append(out.view(hk, n, g, d).transpose(0, 1).reshape(n, hk * g * d))
        return outs[0] if len(outs) == 1 else self.torch.cat(outs)

    # ------------------------------------------------------------------ prefill

    def prefill(self, cache: SlotCache, slot: int, prompt: list[int], splits: Sequence[int] = (),
                reuse: bool = True) -> tuple[Any, int]:
        """Fills ``slot`` with ``prompt``; returns ``(logits of the next token [V], tokens not computed)``.

        See :meth:`prefill_many`, of which this is the one-prompt case.
        """
        return self.prefill_many(cache, [(slot, prompt, splits)], reuse=reuse)[0]

    def prefill_many(self, cache: SlotCache, prompts: Sequence[tuple[int, list[int], Sequence[int]]],
                     reuse: bool = True) -> list[tuple[Any, int]]:
        """Fills each ``(slot, prompt, splits)``; returns per prompt ``(next-token logits [V], tokens not computed)``.

        A prompt is cut into segments ending at ``splits`` (token offsets, e.g. message boundaries),
        at every multiple of :data:`PREFIX_BLOCK` and at its end. Every segment but the last is looked
        up in (and stored to) the prefix cache, and a segment an earlier prompt of the same call
        computes is copied from that prompt's slot, so requests sharing a start (a system prompt, then
        a passage) compute it once. The segments left to compute, of all prompts, run together in
        passes of up to :data:`PREFILL_ROWS` rows: one matrix product per projection for all their
        rows (a row's result does not depend on the other rows), then one attention call per segment
        over exactly its keys, the call a prompt prefilled alone makes. So a prompt's numbers depend
        only on the prompt, not on its batch-mates or on whether a prefix came from the cache.
        """
        cache.ensure(max(len(p) for _, p, _ in prompts))
        claimed: dict[bytes, int] = {}  # segment key -> slot of the prompt that computes it in this call
        work: list[_Segment] = []
        borrows: dict[int, list[tuple[int, int, int, int]]] = {}  # prompt index -> (from slot, to slot, start, end)
        saved = [0] * len(prompts)
        for index, (slot, prompt, splits) in enumerate(prompts):
            n = len(prompt)
            cuts = set(splits) | set(range(PREFIX_BLOCK, n, PREFIX_BLOCK))
            bounds = [b for b in sorted(cuts) if 0 < b < n] + [n]
            key, start, mode = b"", 0, "cached" if reuse else "computed"
            for end in bounds:
                last = end == n
                key = key if last else PrefixCache.chain(key, prompt[start:end])
                hit = self.prefix.get(key) if mode == "cached" and not last else None
                if hit is not None:
                    cache.k[:, slot, :, start:end] = hit[0]
                    cache.v[:, slot, :, start:end] = hit[1]
                elif mode != "computed" and not last and key in claimed:
                    mode = "borrowed"
                    borrows.setdefault(index, []).append((claimed[key], slot, start, end))
                else:
                    mode = "computed"
                    if reuse and not last:
                        claimed[key] = slot
                    work.append(_Segment(index, slot, start, prompt[start:end], key if reuse and not last else None))
                    start = end
                    continue
                saved[index] += end - start
                start = end
        logits: dict[int, Any] = {}
        passes: list[list[_Segment]] = [[]]
        for seg in work:
            if passes[-1] and sum(len(s.tokens) for s in passes[-1]) + len(seg.tokens) > PREFILL_ROWS:
                passes.append([])
            passes[-1].append(seg)
        started: set[int] = set()
        for segs in passes:
            # a prompt's copies from other slots happen in the pass that computes its first segment
            firsts = {s.index for s in segs} - started
            started |= firsts
            copies = [c for i in sorted(firsts) for c in borrows.get(i, [])]
            finals = {s.index for s in segs if s.start + len(s.tokens) == len(prompts[s.index][1])}
            logits.update(self._prefill_pass(cache, segs, copies, finals))
            for seg in segs:
                if seg.key is not None:
                    end = seg.start + len(seg.tokens)
                    self.prefix.put(seg.key, cache.k[:, seg.slot, :, seg.start:end].clone(),
                                    cache.v[:, seg.slot, :, seg.start:end].clone())
        return [(logits[i], saved[i]) for i in range(len(prompts))]

    def _prefill_pass(self, cache: SlotCache, segs: list[_Segment], copies: list[tuple[int, int, int, int]],
                      finals: set[int]) -> dict[int, Any]:
        """Runs the segments' rows through every layer; returns the next-token logits of the prompts
        (by index) whose last segment is among them, ``finals``."""
        torch = self.torch
        F = torch.nn.functional
        hk, d, heads = self.kv_heads, self.head_dim, self.heads
        tokens = [t for s in segs for t in s.tokens]
        total = len(tokens)
        pos = torch.tensor([s.start + j for s in segs for j in range(len(s.tokens))], dtype=torch.long)
        slots = torch.tensor([s.slot for s in segs for _ in s.tokens], dtype=torch.long)
        cos = self.cos[pos][:, None, :]
        sin = self.sin[pos][:, None, :]
        spans, row = [], 0
        for s in segs:
            n, end = len(s.tokens), s.start + len(s.tokens)
            spans.append((row, n, s.slot, end, torch.arange(end)[None, :] <= torch.arange(s.start, end)[:, None]))
            row += n
        x = self.embed[torch.tensor(tokens, dtype=torch.long)]
        for i, layer in enumerate(self.layers):
            in_norm, qkv_w, o_w, _, _, _, nq, nk, _ = layer
            qkv = self._lin(self._norm(x, in_norm), qkv_w)
            q = self._rope(qkv[:, :nq].view(total, heads, d), cos, sin, torch)
            keys, values = cache.k[i], cache.v[i]
            keys[slots, :, pos] = self._rope(qkv[:, nq:nq + nk].view(total, hk, d), cos, sin, torch)
            values[slots, :, pos] = qkv[:, nq + nk:].view(total, hk, d)
            for src, dst, start, end in copies:
                keys[dst, :, start:end] = keys[src, :, start:end]
                values[dst, :, start:end] = values[src, :, start:end]
            outs = [F.scaled_dot_product_attention(q[r:r + n].transpose(0, 1)[None], keys[slot:slot + 1, :, :end],
                                                   values[slot:slot + 1, :, :end], attn_mask=mask, enable_gqa=True)
                    [0].transpose(0, 1).reshape(n, nq) for r, n, slot, end, mask in spans]
            x = self._mlp(x + self._lin(outs[0] if len(outs) == 1 else torch.cat(outs), o_w), layer)
        if not finals:
            return {}
        ends = {s.index: r + n - 1 for (r, n, *_), s in zip(spans, segs, strict=True) if s.index in finals}
        order = sorted(ends)
        out = self._lin(self._norm(x[[ends[i] for i in order]], self.final_norm), self.lm_head)
        return {i: out[j] for j, i in enumerate(order)}


class _Segment:
    """Prompt tokens to compute: prompt ``index`` of the call, in ``slot`` from position ``start``."""

    __slots__ = ("index", "slot", "start", "tokens", "key")

    def __init__(self, index: int, slot: int, start: int, tokens: list[int], key: bytes | None):
        self.index, self.slot, self.start, self.tokens, self.key = index, slot, start, tokens, key


def rope_frequencies(config: dict[str, Any], torch: Any) -> tuple[Any, float]:
    """``(inverse frequencies, attention scaling)`` of the model's rotary embedding.

    The default rope is computed here as transformers computes it (same numbers); other rope types
    (``llama3``, ``linear``, ...) go through transformers' own functions.
    """
    params = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    theta = float(params.get("rope_theta") or config.get("rope_theta") or 10000.0)
    kind = params.get("rope_type") or params.get("type") or "default"
    if kind == "default":
        dim = int(config.get("head_dim") or int(config["hidden_size"]) // int(config["num_attention_heads"]))
        return 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim)), 1.0
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    inv_freq, scale = ROPE_INIT_FUNCTIONS[kind](LlamaConfig.from_dict(config), "cpu")
    return inv_freq.float(), float(scale)


class Int8Linear:
    """``x @ w.T`` with int8 weights (per output channel) and int8 activations scaled per row.

    fbgemm's dynamic linear quantizes its whole input with one scale, which would make a row's
    result depend on the other rows of the batch. Here every row is first divided by its own
    largest magnitude, and a sentinel row holding +1 and -1 is appended, so the input range is
    always exactly [-1, 1]: each row is quantized alike whatever its batch-mates, accumulated in
    exact int32 arithmetic, and scaled back, so batched results equal lone results bit for bit.
    """

    def __init__(self, weight: Any, torch: Any):
        self.torch = torch
        w = weight.detach().float()
        scales = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
        zeros = torch.zeros(w.shape[0], dtype=torch.long)
        qw = torch.quantize_per_channel(w, scales, zeros, 0, torch.qint8)
        self.packed = torch.ops.quantized.linear_prepack(qw, None)
        sentinel = torch.zeros(1, w.shape[1])
        sentinel[0, 0], sentinel[0, 1] = 1.0, -1.0
        self.sentinel = sentinel
        self.out_features = w.shape[0]

    def __call__(self, x: Any) -> Any:
        torch = self.torch
        amax = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12)
        rows = torch.cat([(x / amax).reshape(-1, x.shape[-1]), self.sentinel])
        y = torch.ops.quantized.linear_dynamic(rows, self.packed, True)[:-1]
        return y.reshape(*x.shape[:-1], self.out_features) * amax


class PackedLinear:
    """``x @ w.T`` through oneDNN, the weight reordered once into oneDNN's blocked layout.

    torch's own float32 ``linear`` goes to MKL, whose sgemm runs the embedded model's projections
    2-3x slower than oneDNN on the AMD CPU measured here (``benchmarks/local_model.py``, GEMM variants).
    oneDNN computes a row the same way whatever the other rows once there are two or more (a single
    row takes a matrix-vector path that sums in another order), so a lone row is padded with a zero
    row: batched results equal lone results bit for bit. ``SYNTHRUN_LOCAL_GEMM=blas`` turns it off.
    """

    def __init__(self, weight: Any, torch: Any):
        self.torch = torch
        w = weight.detach().contiguous()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(w, None)
        self.pad = torch.zeros(1, w.shape[1], dtype=w.dtype)
        self.out_features = w.shape[0]

    @staticmethod
    def usable(torch: Any, dtype: Any) -> bool:
        wanted = os.environ.get("SYNTHRUN_LOCAL_GEMM", "onednn").strip().lower()
        if wanted not in ("onednn", "blas"):
            raise ValueError(f"SYNTHRUN_LOCAL_GEMM must be onednn or blas, got {wanted!r}")
        return (wanted == "onednn" and dtype == torch.float32 and torch.backends.mkldnn.is_available()
                and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))

    def __call__(self, x: Any) -> Any:
        torch = self.torch
        rows = x.reshape(-1, x.shape[-1])
        n = rows.shape[0]
        if n == 1:
            rows = torch.cat([rows, self.pad])
        y = torch.ops.mkldnn._linear_pointwise(rows, self.packed, None, "none", [], "")
        return y[:n].reshape(*x.shape[:-1], self.out_features)
