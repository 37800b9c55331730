"""Parsing model answers into pydantic models, with repair."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from synthrun.llm.jsonparse import ParseFailure, dumps, loads, parse_answer


class Pair(BaseModel):
    question: str
    score: int


@pytest.mark.parametrize("text", [
    '{"question": "q", "score": 3}',
    '```json\n{"question": "q", "score": 3}\n```',
    'Sure! Here it is: {"question": "q", "score": 3} Hope that helps.',
    '{"question": "q", "score": 3,',
    "{'question': 'q', 'score': 3}",
])
def test_parse_and_repair(text):
    assert parse_answer(text, Pair) == Pair(question="q", score=3)


@pytest.mark.parametrize("text, reason", [
    ("no json here at all", "invalid_json"),
    ("", "empty_response"),
    (None, "empty_response"),
    ('{"question": "q"}', "schema_mismatch"),
    ('{"question": "q", "score": "high"}', "schema_mismatch"),
    ('{"question": "q", "score": ', "schema_mismatch"),
])
def test_unusable_answers(text, reason):
    with pytest.raises(ParseFailure) as info:
        parse_answer(text, Pair)
    assert info.value.reason == reason and info.value.detail


def test_mismatch_detail_names_the_field():
    with pytest.raises(ParseFailure) as info:
        parse_answer('{"question": 1}', Pair)
    assert "score" in info.value.detail and "question" in info.value.detail


def test_dumps_loads_roundtrip():
    obj = {"b": [1, 2.5, None], "a": "é"}
    assert loads(dumps(obj)) == obj
    assert dumps(obj, sort_keys=True).startswith(b'{"a"')
