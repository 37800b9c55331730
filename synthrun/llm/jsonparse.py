"""Fast JSON encode/decode plus lenient parsing of model answers against a pydantic schema."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

try:  # orjson is several times faster; the stdlib is the fallback.
    import orjson

    def dumps(obj: Any, sort_keys: bool = False) -> bytes:
        """Serialize ``obj`` to compact UTF-8 JSON bytes."""
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if sort_keys else 0)

    loads = orjson.loads
    JSONDecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - exercised only without orjson

    def dumps(obj: Any, sort_keys: bool = False) -> bytes:
        """Serialize ``obj`` to compact UTF-8 JSON bytes."""
        return json.dumps(obj, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False).encode()

    loads = json.loads  # type: ignore[assignment]
    JSONDecodeError = json.JSONDecodeError

INVALID_JSON = "invalid_json"
SCHEMA_MISMATCH = "schema_mismatch"
EMPTY = "empty_response"

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


class ParseFailure(Exception):
    """An answer that is not valid JSON for the schema; ``reason`` is a reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _describe(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(root)"
        parts.append(f"{loc}: {err.get('msg', '')}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _repair(text: str) -> Any:
    """Best-effort JSON from ``text``: strip code fences, then let ``json_repair`` fix it."""
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
        try:
            return loads(text)
        except (JSONDecodeError, ValueError):
            pass
    import json_repair

    obj = json_repair.loads(text)
    # json_repair returns "" (or an empty container) when nothing JSON-like is in the text.
    if obj == "" or (obj in ({}, []) and "{" not in text and "[" not in text):
        raise ParseFailure(INVALID_JSON, "no JSON object found in the answer")
    return obj


def parse_answer(text: str | None, schema: type[BaseModel]) -> BaseModel:
    """Parse a model's answer into ``schema``, repairing broken JSON when possible.

    Args:
        text: The raw answer.
        schema: The pydantic model to validate against.

    Returns:
        A validated ``schema`` instance.

    Raises:
        ParseFailure: With reason ``empty_response``, ``invalid_json`` or ``schema_mismatch``.
    """
    if text is None or not text.strip():
        raise ParseFailure(EMPTY, "the answer was empty")
    try:  # fast path: pydantic-core parses and validates in one go
        return schema.model_validate_json(text)
    except ValidationError as exc:
        if not any(e.get("type") == "json_invalid" for e in exc.errors(include_url=False)):
            raise ParseFailure(SCHEMA_MISMATCH, _describe(exc)) from None
    try:
        obj = _repair(text)
    except ParseFailure:
        raise
    except Exception as exc:  # json_repair can raise on pathological input
        raise ParseFailure(INVALID_JSON, f"could not repair the JSON ({type(exc).__name__})") from None
    try:
        return schema.model_validate(obj)
    except ValidationError as exc:
        raise ParseFailure(SCHEMA_MISMATCH, _describe(exc)) from None
