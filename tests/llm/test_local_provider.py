"""The litellm ``local`` provider: registration, response_format handling, real calls to the engine."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from pydantic import BaseModel, Field

from synthrun.llm.constrain import JSON_OBJECT_SCHEMA
from synthrun.llm.local_provider import PROVIDER, _schema_from_response_format, register

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODEL = "local/smollm2-135m"


class Rating(BaseModel):
    rating: int = Field(ge=0, le=3)
    reason: str


def test_response_format_variants():
    schema = Rating.model_json_schema()
    wrapped = {"type": "json_schema", "json_schema": {"name": "Rating", "schema": schema, "strict": True}}
    assert _schema_from_response_format(wrapped) == schema
    assert _schema_from_response_format(Rating) == schema
    assert _schema_from_response_format({"type": "json_object"}) == JSON_OBJECT_SCHEMA
    assert _schema_from_response_format({"type": "text"}) is None
    assert _schema_from_response_format(None) is None
    with pytest.raises(ValueError, match="no 'schema'"):
        _schema_from_response_format({"type": "json_schema", "json_schema": {"name": "x"}})
    with pytest.raises(ValueError, match="unsupported"):
        _schema_from_response_format({"type": "xml"})


def test_register_is_idempotent():
    import litellm

    first = register()
    second = register()
    assert first is second
    entries = [e for e in litellm.custom_provider_map if e["provider"] == PROVIDER]
    assert len(entries) == 1 and entries[0]["custom_handler"] is first
    assert PROVIDER in litellm.provider_list


@pytest.mark.slow
def test_acompletion_with_json_schema_returns_valid_model_response():
    import litellm

    register()
    rf = {"type": "json_schema", "json_schema": {"name": "Rating", "schema": Rating.model_json_schema()}}
    msgs = [{"role": "user", "content": "Rate from 0 to 3 how correct this is: 2 + 2 = 5."}]

    async def calls():
        return await asyncio.gather(*[
            litellm.acompletion(model=MODEL, messages=msgs, response_format=rf, max_tokens=40,
                                temperature=0.9, seed=i, drop_params=True, num_retries=0, timeout=600)
            for i in range(3)
        ])

    for resp in asyncio.run(calls()):
        assert isinstance(resp, litellm.ModelResponse)
        assert 0 <= Rating.model_validate_json(resp.choices[0].message.content).rating <= 3
        assert resp.choices[0].finish_reason == "stop"
        assert resp.usage.prompt_tokens > 10 and 0 < resp.usage.completion_tokens <= 40
        assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
        assert resp.model == MODEL
        assert litellm.completion_cost(resp) == 0.0


@pytest.mark.slow
def test_sync_completion_json_object_and_text():
    import litellm

    register()
    msgs = [{"role": "user", "content": "Describe a cat as a JSON object."}]
    resp = litellm.completion(model=MODEL, messages=msgs, response_format={"type": "json_object"},
                              max_tokens=40, temperature=0)
    assert isinstance(json.loads(resp.choices[0].message.content), dict)
    text = litellm.completion(model=MODEL, messages=msgs, max_tokens=6, temperature=0)
    assert text.choices[0].message.content and text.choices[0].finish_reason in ("stop", "length")
    assert text.usage.completion_tokens <= 6


@pytest.mark.slow
def test_client_reaches_the_engine_directly_with_provider_settings():
    from pydantic import BaseModel, Field

    from synthrun.llm.client import LLMClient
    from synthrun.llm.local_engine import LocalEngine
    from synthrun.llm.local_provider import LocalTransport

    class Verdict(BaseModel):
        score: int = Field(ge=1, le=5)

    client = LLMClient({"model": "local/smollm2-135m", "batch_size": 4, "temperature": 0.7, "seed": 1},
                       show_progress=False)
    assert isinstance(client._transport, LocalTransport)
    result = client.complete([{"role": "user", "content": "Rate HDF5 from 1 to 5."}], schema=Verdict, max_tokens=16)
    assert result.ok and 1 <= result.parsed.score <= 5 and result.completion_tokens > 0
    assert LocalEngine.get().max_batch == 4
    too_long = client.complete([{"role": "user", "content": "word " * 9000}], max_tokens=8)
    assert too_long.error == "context_window_exceeded"
