"""Pull the text to embed, hash or score out of any record shape.

Records reach the selection stages in many shapes: ``QAPair`` (``question`` /
``answer``), ``CoTExample`` (``reasoning`` steps), ``ToolExample``
(``instruction`` / ``reasoning_path`` / ``final_answer``), Alpaca rows
(``instruction`` / ``input`` / ``output``), OpenAI chat rows (``messages`` with
``role`` / ``content``) and ShareGPT rows (``conversations`` with ``from`` /
``value``). The helpers here read pydantic records and plain dicts alike.

Field paths are dotted: ``metadata.title``, ``messages.0.content``. On a list of
chat messages a role name selects the turns of that role, so ``messages.user``
is the text of every user turn and ``conversations.gpt`` every assistant turn of
a ShareGPT row. A list of messages without a role selector becomes the text of
all its turns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

_MISSING = object()

#: Fields holding the request side of an example, in the order they are tried.
PROMPT_FIELDS = ("instruction", "question", "prompt", "query", "problem", "input", "text", "content")
#: Fields holding the answer side of an example, in the order they are tried.
RESPONSE_FIELDS = ("answer", "response", "output", "completion", "final_answer", "solution", "chosen")
#: Fields holding a chat transcript.
CHAT_FIELDS = ("messages", "conversations", "conversation", "turns")

_USER_ROLES = {"user", "human", "prompter"}
_ASSISTANT_ROLES = {"assistant", "gpt", "bot", "model", "chatbot"}
_ROLE_ALIASES = {
    "user": _USER_ROLES, "human": _USER_ROLES,
    "assistant": _ASSISTANT_ROLES, "gpt": _ASSISTANT_ROLES, "bot": _ASSISTANT_ROLES, "model": _ASSISTANT_ROLES,
    "system": {"system"}, "tool": {"tool", "function", "ipython"}, "function": {"tool", "function"},
}


def _child(obj: Any, key: str) -> Any:
    if isinstance(obj, BaseModel):
        if key in type(obj).model_fields:
            return getattr(obj, key)
        extra = obj.model_extra or {}
        return extra.get(key, _MISSING)
    if isinstance(obj, dict):
        return obj.get(key, _MISSING)
    if isinstance(obj, (list, tuple)):
        if _is_chat(obj) and key.lower() in _ROLE_ALIASES:
            return [m for m in obj if _role(m) in _ROLE_ALIASES[key.lower()]]
        try:
            return obj[int(key)]
        except (ValueError, IndexError):
            return _MISSING
    return getattr(obj, key, _MISSING)


def get_path(obj: Any, path: str, default: Any = None) -> Any:
    """Return the value at dotted ``path`` inside ``obj`` (record, dict or list), or ``default``."""
    value = obj
    for key in path.split("."):
        value = _child(value, key)
        if value is _MISSING or value is None:
            return default
    return value


def _role(message: Any) -> str:
    if isinstance(message, BaseModel):
        message = message.model_dump()
    if not isinstance(message, dict):
        return ""
    return str(message.get("role") or message.get("from") or "").lower()


def _is_chat(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple)) and len(value) > 0
        and all(isinstance(m, dict) and ("role" in m or "from" in m) for m in value)
    )


def to_text(value: Any) -> str:
    """Turn a field value into plain text (strings, lists of strings, chat turns, steps, dicts)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, (int, float, bool)):
        return str(value)
    if isinstance(value, dict):
        for key in ("content", "value", "text"):
            if key in value:
                return to_text(value[key])
        if "type" in value and value.get("type") != "text":
            return ""  # an image or audio part of a multimodal message
        if "tool" in value or "thought" in value:  # a tool-use reasoning step
            return " ".join(filter(None, [to_text(value.get("thought")), str(value.get("tool") or ""),
                                          json.dumps(value.get("args") or {}, ensure_ascii=False, sort_keys=True)]))
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if isinstance(value, (list, tuple)):
        return "\n".join(t for t in (to_text(v) for v in value) if t)
    return str(value)


def chat_turns(obj: Any, roles: set[str]) -> list[str]:
    """Return the texts of the chat turns of ``obj`` whose role is in ``roles``."""
    for name in CHAT_FIELDS:
        turns = get_path(obj, name)
        if _is_chat(turns):
            return [to_text(m) for m in turns if _role(m) in roles]
    return []


def field_text(obj: Any, fields: str | Sequence[str]) -> str:
    """Join the text of one or more dotted ``fields`` of ``obj`` (missing fields give nothing)."""
    if isinstance(fields, str):
        fields = [fields]
    return "\n\n".join(t for t in (to_text(get_path(obj, f)).strip() for f in fields) if t)


def prompt_text(obj: Any, fields: str | Sequence[str] | None = None) -> str:
    """Return the request side of an example: ``fields`` if given, else the first usual field found.

    The usual fields are tried in :data:`PROMPT_FIELDS` order (an Alpaca ``input`` is
    appended to its ``instruction``), then the user turns of a chat transcript.
    """
    if fields:
        return field_text(obj, fields)
    for name in PROMPT_FIELDS:
        text = to_text(get_path(obj, name)).strip()
        if text:
            if name == "instruction":
                extra = to_text(get_path(obj, "input")).strip()
                if extra:
                    text = f"{text}\n{extra}"
            return text
    return "\n".join(chat_turns(obj, _USER_ROLES)).strip()


def reasoning_steps(obj: Any) -> list[str]:
    """Return explicit reasoning steps (``reasoning`` list or tool ``reasoning_path``), if any."""
    steps = get_path(obj, "reasoning")
    if isinstance(steps, (list, tuple)):
        return [t for t in (to_text(s).strip() for s in steps) if t]
    path = get_path(obj, "reasoning_path")
    if isinstance(path, (list, tuple)):
        return [t for t in (to_text(s).strip() for s in path) if t]
    return []


def response_text(obj: Any, fields: str | Sequence[str] | None = None) -> str:
    """Return the answer side of an example, reasoning steps included.

    With ``fields`` unset: explicit reasoning steps followed by the first usual answer
    field (:data:`RESPONSE_FIELDS`), else the assistant turns of a chat transcript.
    """
    if fields:
        return field_text(obj, fields)
    steps = reasoning_steps(obj)
    answer = ""
    for name in RESPONSE_FIELDS:
        answer = to_text(get_path(obj, name)).strip()
        if answer:
            break
    if not answer and not steps:
        return "\n".join(chat_turns(obj, _ASSISTANT_ROLES)).strip()
    return "\n".join([*steps, answer]).strip()


def full_text(obj: Any) -> str:
    """Return the request and the answer of an example as one text."""
    return "\n\n".join(t for t in (prompt_text(obj), response_text(obj)) if t)


def names_topic(topic: str | None, *texts: str | None) -> bool:
    """True when any text names ``topic`` as a whole word (case-insensitive), e.g. "HDF5" in a question.

    A record that names its topic is on topic; only the others need an LLM's verdict.
    """
    if not topic or not topic.strip():
        return False
    pattern = re.compile(rf"(?<![\w]){re.escape(topic.strip())}(?![\w])", re.I)
    return any(pattern.search(t) for t in texts if t)

