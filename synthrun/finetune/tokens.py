"""Chat examples as token ids with an assistant-only loss mask; eval loss and greedy answers."""

from __future__ import annotations

from typing import Any

from synthrun.errors import StageError


def _render(tokenizer: Any, messages: list[dict[str, str]], tools: list | None, gen: bool) -> str:
    kwargs = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen, **kwargs)


def encode_chat(tokenizer: Any, messages: list[dict[str, str]], max_len: int,
                tools: list | None = None) -> dict[str, list[int]] | None:
    """``input_ids`` and ``assistant_masks`` (1 on assistant turns incl. their end-of-turn token).

    The spans come from rendering the conversation with the model's own chat template up to each
    assistant turn, so any template works without ``{% generation %}`` markers. Returns None when
    no assistant token survives truncation to ``max_len``.
    """
    full = _render(tokenizer, messages, tools, False)
    spans = []
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], tools, True) if i else ""
        upto = _render(tokenizer, messages[: i + 1], tools, False)
        if not (full.startswith(upto) and upto.startswith(before)):
            raise StageError("the chat template does not render conversations as a growing prefix; "
                             "cannot find the assistant turns")
        spans.append((len(before), len(upto.rstrip("\n")) if upto.endswith("\n") else len(upto)))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    mask = [1 if any(s <= start < e for s, e in spans) else 0 for start, _end in enc["offset_mapping"]]
    ids, mask = ids[:max_len], mask[:max_len]
    if not any(mask):
        return None
    return {"input_ids": ids, "assistant_masks": mask}


def encode_rows(tokenizer: Any, rows: list[dict[str, Any]], max_len: int) -> tuple[list[dict[str, list[int]]], int]:
    """Encode ``rows`` (each with ``messages``); returns the encoded rows and how many had to be dropped."""
    out, dropped = [], 0
    for row in rows:
        enc = encode_chat(tokenizer, row["messages"], max_len, row.get("tools"))
        if enc is None:
            dropped += 1
        else:
            out.append(enc)
    return out, dropped


def eval_loss(model: Any, encoded: list[dict[str, list[int]]], pad_id: int, batch_size: int = 4) -> float:
    """Mean cross-entropy per assistant token (the training loss) over ``encoded``."""
    import torch

    if not encoded:
        return float("nan")
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start:start + batch_size]
            width = max(len(e["input_ids"]) for e in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            att = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for i, e in enumerate(batch):
                n = len(e["input_ids"])
                ids[i, :n] = torch.tensor(e["input_ids"])
                att[i, :n] = 1
                labels[i, :n] = torch.where(torch.tensor(e["assistant_masks"]) == 1, ids[i, :n], -100)
            logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
            target = labels[:, 1:]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                     ignore_index=-100, reduction="sum")
            total += float(loss)
            count += int((target != -100).sum())
    model.train(was_training)
    return total / max(count, 1)


def prompt_of(messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], str]:
    """The conversation up to the last assistant turn, and that turn's reference text."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:last], messages[last]["content"]


def greedy_answers(model: Any, tokenizer: Any, prompts: list[list[dict[str, str]]], max_new_tokens: int) -> list[str]:
    """Greedy (deterministic) answers of ``model`` to each chat prompt."""
    import torch

    answers = []
    model.eval()
    with torch.no_grad():
        for messages in prompts:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            answers.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return answers
