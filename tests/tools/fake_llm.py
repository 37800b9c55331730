"""A real OpenAI-compatible server on 127.0.0.1 answering the tool stages' schemas sensibly.

The shared :class:`tests.llm.fake_openai_server.FakeOpenAIServer` builds answers from the JSON
schema; this responder also fills the sentence fields the tool prompts constrain with patterns
(request, thought, answer, requirements) and lets a test decide other fields per request.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from tests.llm.fake_openai_server import FakeOpenAIServer, instance_for, messages_hash, provider_for

SENTENCES = {
    "request": "What is the shape of the temperature dataset in climate.h5?",
    "thought": "I need to look at the data before answering.",
    "answer": "The results show the requested values.",
    "reasoning": "Looks fine.",
    "reason": "The results match.",
}


def _fill(schema: dict[str, Any], value: Any, root: dict[str, Any], rng: random.Random,
          fields: dict[str, Any], request: dict[str, Any], name: str = "") -> Any:
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        schema = (root.get("$defs") or {}).get(ref, schema)
    if name in fields:
        v = fields[name]
        return v(request) if callable(v) else v
    if schema.get("type") == "object" and "properties" in schema:
        return {k: _fill(s, value.get(k) if isinstance(value, dict) else None, root, rng, fields, request, k)
                for k, s in schema["properties"].items()}
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict) and "pattern" in schema["items"]:
        return ["The answer names the dataset.", "The answer gives its shape."][: max(1, schema.get("minItems", 1))]
    if schema.get("type") == "string" and "pattern" in schema:
        text = SENTENCES.get(name, "Now I check the result.")
        assert re.fullmatch(schema["pattern"], text), (name, schema["pattern"])
        return text
    return value


def responder_with(fields: dict[str, Any] | None = None) -> Callable[[dict[str, Any]], str]:
    """A responder: valid JSON for the request's schema; ``fields`` fixes named fields (value or fn(request))."""
    fields = fields or {}

    def respond(request: dict[str, Any]) -> str:
        rng = random.Random(int(messages_hash(request)[:16], 16))
        fmt = request.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        value = instance_for(schema, rng)
        return json.dumps(_fill(schema, value, schema, rng, fields, request))

    return respond


def last_user(request: dict[str, Any]) -> str:
    return next((m["content"] for m in reversed(request["messages"]) if m["role"] == "user"), "")


@contextmanager
def fake_llm(fields: dict[str, Any] | None = None):
    """``with fake_llm() as (server, provider):`` a running server and a provider dict for it."""
    with FakeOpenAIServer(responder=responder_with(fields)) as server:
        yield server, provider_for(server.base_url, concurrency=4, max_tokens=128)


def make_ctx(tmp_path, provider: dict[str, Any], name: str = "stage", seed: int = 0):
    from synthrun.context import StageContext

    stage_dir = tmp_path / name
    stage_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(name=name, run_id="test-run", run_dir=tmp_path, stage_dir=stage_dir, provider=provider,
                        show_progress=False, seed=seed)
