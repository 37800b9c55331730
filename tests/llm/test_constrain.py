"""Schema -> regex compilation and post-decoding fixes for the embedded model (no model needed)."""

from __future__ import annotations

import json
import re
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from synthrun.llm.constrain import (
    JSON_OBJECT_SCHEMA,
    integer_regex,
    number_regex,
    schema_to_regex,
    truncate_to_schema,
)


class Rating(BaseModel):
    rating: int = Field(ge=0, le=3)
    reason: str


class Sub(BaseModel):
    name: str
    n: int = Field(ge=1, le=5)


class Record(BaseModel):
    title: str = Field(max_length=10)
    kind: Literal["fact", "howto"]
    score: float = Field(ge=0, le=1)
    tags: list[str]
    ok: bool
    note: str | None = None
    sub: Sub
    count: int = Field(ge=0)


def _full(regex: str, text: str) -> bool:
    return re.fullmatch(regex, text) is not None


@pytest.mark.parametrize(("text", "ok"), [("0", True), ("3", True), ("4", False), ("-1", False), ("03", False)])
def test_integer_bounds_are_exact(text, ok):
    assert _full(integer_regex({"type": "integer", "minimum": 0, "maximum": 3}), text) is ok


def test_integer_exclusive_and_open_bounds():
    rx = integer_regex({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 4})
    assert [t for t in ["0", "1", "3", "4"] if _full(rx, t)] == ["1", "3"]
    nonneg = integer_regex({"type": "integer", "minimum": 0})
    assert _full(nonneg, "12345") and not _full(nonneg, "-5")
    assert not _full(nonneg, "1" * 20), "digits must be bounded so the model cannot ramble"
    with pytest.raises(ValueError, match="empty range"):
        integer_regex({"type": "integer", "minimum": 5, "maximum": 1})


def test_number_bounds_zero_to_one():
    rx = number_regex({"type": "number", "minimum": 0, "maximum": 1})
    for good in ["0", "0.25", "1", "1.0"]:
        assert _full(rx, good), good
    for bad in ["1.5", "2", "-0.1", "0.1234567"]:
        assert not _full(rx, bad), bad


def test_schema_regex_accepts_valid_and_rejects_invalid_json():
    rx = schema_to_regex(Rating.model_json_schema())
    assert _full(rx, '{"rating": 2, "reason": "clear"}')
    assert not _full(rx, '{"rating": 7, "reason": "clear"}')
    assert not _full(rx, '{"reason": "clear", "rating": 2}')  # key order is the schema's

    rx = schema_to_regex(Record.model_json_schema())
    good = {"title": "a long title beyond ten", "kind": "fact", "score": 0.5, "tags": ["x", "y"], "ok": True,
            "sub": {"name": "s", "n": 5}, "count": 3}
    assert _full(rx, json.dumps(good)), "maxLength is left to truncate_to_schema, not the regex"
    with_note = dict(list(good.items())[:5] + [("note", "n")] + list(good.items())[5:])  # schema order
    assert _full(rx, json.dumps(with_note)), "the optional field may be present"
    assert not _full(rx, json.dumps({**good, "kind": "other"}))
    assert not _full(rx, json.dumps({**good, "sub": {"name": "s", "n": 6}}))


def test_truncate_to_schema_enforces_max_length_through_refs():
    schema = Record.model_json_schema()
    value = {"title": "x" * 30, "kind": "fact", "score": 1, "tags": [], "ok": False,
             "sub": {"name": "s", "n": 1}, "count": 0}
    fixed, changed = truncate_to_schema(value, schema, schema)
    assert changed and fixed["title"] == "x" * 10
    assert Record.model_validate(fixed).title == "x" * 10
    same, changed = truncate_to_schema({"title": "short"}, schema, schema)
    assert not changed and same == {"title": "short"}


def test_json_object_schema_regex():
    rx = schema_to_regex(JSON_OBJECT_SCHEMA)
    assert _full(rx, '{"a": "b", "n": 3, "t": true, "l": ["x", 1]}')
    assert _full(rx, "{}")
    assert not _full(rx, "[1, 2]")


def test_concurrent_requests_for_a_new_schema_compile_it_once(monkeypatch):
    import threading

    from outlines_core import Vocabulary

    from synthrun.llm import constrain

    table = {bytes([c]): [i + 1] for i, c in enumerate(b'{}[]",:0123456789abcdefghijklmnopqrstuvwxyz -')}
    cache = constrain.ConstraintCache(Vocabulary(0, table), eos_token_id=0)
    built: list[str] = []
    real = constrain.JsonConstraint

    def counting(*args, **kwargs):
        built.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(constrain, "JsonConstraint", counting)
    start = threading.Barrier(6)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(cache.get(Rating.model_json_schema()))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len(got) == 6 and all(g is got[0] for g in got)
    assert cache.get(Sub.model_json_schema()) is not got[0] and len(built) == 2
