"""Any training row (ChatML/messages, Alpaca, ShareGPT, TRL tool rows, synthrun records) as chat messages."""

from __future__ import annotations

import json
from typing import Any

from synthrun.formats import FormatError, prompt_and_response

_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                   "assistant": "assistant", "function_call": "assistant", "observation": "tool",
                   "tool": "tool", "function": "tool"}
_ROLES = {"system", "user", "assistant", "tool"}


class RowError(ValueError):
    """A row that is not a training example (the message says why)."""


def _tool_call_text(call: dict[str, Any]) -> str:
    fn = call.get("function") if isinstance(call.get("function"), dict) else call
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            pass
    body = json.dumps({"name": fn.get("name"), "arguments": args}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _clean(messages: list[Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise RowError(f"message {i} is a {type(msg).__name__}, not an object")
        role = str(msg.get("role") or "")
        if role == "developer":
            role = "system"
        if role not in _ROLES:
            raise RowError(f"message {i} has role {role!r} (expected system, user, assistant or tool)")
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
        text = "" if content is None else str(content)
        calls = msg.get("tool_calls") or []
        if calls:
            text = "\n".join([t for t in [text.strip()] if t] + [_tool_call_text(c) for c in calls])
        out.append({"role": role, "content": text})
    return out


def _from_sharegpt(turns: list[Any], system: str | None) -> list[dict[str, str]]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RowError(f"conversation turn {i} is not an object")
        who = str(turn.get("from") or turn.get("role") or "")
        if who not in _SHAREGPT_ROLES:
            raise RowError(f"conversation turn {i} is from {who!r}")
        msgs.append({"role": _SHAREGPT_ROLES[who], "content": turn.get("value", turn.get("content"))})
    return _clean(msgs)


def to_messages(row: dict[str, Any], cot_style: str = "steps") -> list[dict[str, str]]:
    """The chat messages a row teaches (roles system/user/assistant/tool, string contents).

    Raises:
        RowError: The row has no recognisable training shape or no assistant turn with text.
    """
    if isinstance(row.get("messages"), list):
        msgs = _clean(row["messages"])
    elif isinstance(row.get("conversations"), list):
        msgs = _from_sharegpt(row["conversations"], row.get("system"))
    elif isinstance(row.get("instruction"), str) and isinstance(row.get("output"), str):
        prompt = row["instruction"] + (f"\n\n{row['input']}" if str(row.get("input") or "").strip() else "")
        msgs = [{"role": "system", "content": row["system"]}] if row.get("system") else []
        msgs += [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]
    else:
        from synthrun.records import Record

        try:
            prompt, response = prompt_and_response(Record.model_validate(row), cot_style)  # type: ignore[arg-type]
        except (FormatError, ValueError):
            keys = sorted(k for k in row if k not in ("id", "provenance"))
            raise RowError(f"no training fields (messages, conversations, instruction/output or "
                           f"question/answer); fields: {keys}") from None
        msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise RowError("no assistant turn with text")
    return msgs


def text_key(messages: list[dict[str, str]]) -> str:
    """Exact-text identity of an example (whitespace at the ends ignored)."""
    return json.dumps([[m["role"], m["content"].strip()] for m in messages], ensure_ascii=False)


def group_of(row: dict[str, Any], messages: list[dict[str, str]]) -> str:
    """The source chunk an example came from (provenance ``chunk_id``), else its first user question."""
    for prov in (row.get("provenance"), (row.get("metadata") or {}).get("provenance")
                 if isinstance(row.get("metadata"), dict) else None):
        if isinstance(prov, dict) and prov.get("chunk_id"):
            return f"chunk:{prov['chunk_id']}"
    user = next((m["content"].strip().lower() for m in messages if m["role"] == "user"), "")
    return f"q:{user}"
