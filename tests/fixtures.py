"""Shared test parts for stages: a context factory and an in-memory fake LLM.

::

    from tests.fixtures import FakeLLM, make_ctx

    llm = FakeLLM()                                   # deterministic answers from a hash of the messages
    ctx = make_ctx(tmp_path, "curate", llm=llm)       # StageContext on tmp_path/run/curate, prompts, stats
    out = Curate(threshold=5).run(records, ctx)
    assert len(llm.requests) == len(records)

For the HTTP path, pass ``provider=provider_for(server.base_url)`` (tests/llm/fake_openai_server.py)
instead of ``llm``: the stage then talks to the loopback server through the real client.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from synthrun.context import StageContext
from synthrun.llm.types import LLMProtocol, LLMRequest, LLMResult, LLMStats
from synthrun.prompts import PromptLibrary
from tests.llm.fake_openai_server import default_responder

#: ``responder(request) -> answer text``, or a ready :class:`LLMResult` (e.g. with ``error`` set).
FakeResponder = Callable[[LLMRequest], "str | LLMResult"]


def openai_body(request: LLMRequest) -> dict[str, Any]:
    """The OpenAI-style request body the real client would send for ``request`` (what responders read)."""
    body: dict[str, Any] = {"messages": request.messages, **request.params}
    if request.schema is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": request.schema.__name__,
                                                   "schema": request.schema.model_json_schema()}}
    return body


def from_server_responder(respond: Callable[[dict[str, Any]], str]) -> FakeResponder:
    """Use a loopback-server responder (``responder(body) -> text``) with :class:`FakeLLM`."""
    return lambda request: respond(openai_body(request))


class FakeLLM:
    """An in-memory LLM that satisfies :class:`synthrun.llm.types.LLMProtocol`.

    Answers come from ``responder`` (default: the loopback server's deterministic answers, valid JSON for
    the request's schema). ``fail_next("timeout", ...)`` makes the next requests fail with those error
    codes. Every request is kept in ``requests``; ``stats`` counts calls and failures like the real client.
    """

    def __init__(self, responder: FakeResponder | None = None, model: str = "fake/model") -> None:
        self.responder: FakeResponder = responder or from_server_responder(default_responder)
        self.model = model
        self.stats = LLMStats()
        self.requests: list[LLMRequest] = []
        self.descs: list[str] = []
        self._errors: deque[str] = deque()

    def fail_next(self, *errors: str) -> None:
        """The next ``len(errors)`` requests fail with these error codes, in order (``""``: answered normally)."""
        self._errors.extend(errors)

    def map(self, requests: list[LLMRequest], desc: str = "") -> list[LLMResult]:
        self.descs.append(desc)
        return [self._answer(r) for r in requests]

    def complete(self, messages: list[dict[str, Any]], schema: type[BaseModel] | None = None,
                 **params: Any) -> LLMResult:
        return self._answer(LLMRequest(messages=messages, schema=schema, params=params))

    def _answer(self, request: LLMRequest) -> LLMResult:
        self.requests.append(request)
        self.stats.calls += 1
        error = self._errors.popleft() if self._errors else ""
        if error:
            return self._failed(request, error)
        got = self.responder(request)
        if isinstance(got, LLMResult):
            if got.error:
                self.stats.add_failure(got.error)
            return got
        result = LLMResult(request=request, text=got, model=self.model, prompt_tokens=_tokens(request.messages),
                           completion_tokens=max(1, len(got) // 4), attempts=1)
        self.stats.prompt_tokens += result.prompt_tokens
        self.stats.completion_tokens += result.completion_tokens
        if request.schema is None:
            return result
        try:
            result.parsed = request.schema.model_validate(json.loads(got))
        except (ValueError, ValidationError):
            return self._failed(request, "schema", got)
        return result

    def _failed(self, request: LLMRequest, error: str, text: str | None = None) -> LLMResult:
        self.stats.add_failure(error)
        return LLMResult(request=request, text=text, error=error, model=self.model, attempts=1)


def _tokens(messages: Sequence[dict[str, Any]]) -> int:
    return max(1, sum(len(str(m.get("content", ""))) for m in messages) // 4)


def make_ctx(tmp_path: Path, name: str = "stage", *, folder: str | None = None, llm: LLMProtocol | None = None,
             provider: dict[str, Any] | None = None, cache_path: Path | None = None, seed: int = 0,
             run_id: str = "run1", prompts: PromptLibrary | None = None) -> StageContext:
    """A :class:`StageContext` for stage ``name`` in ``tmp_path/run/<folder or name>``.

    ``llm`` is used as ``ctx.llm`` as it is (e.g. a :class:`FakeLLM`); otherwise ``ctx.llm`` is the real
    client for ``provider`` (e.g. ``provider_for(server.base_url)``). The context's ``stats`` is the fake's
    own, so ``ctx.stats.calls`` counts its calls either way.
    """
    run_dir = tmp_path / "run"
    stage_dir = run_dir / (folder or name)
    stage_dir.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(name=name, run_id=run_id, run_dir=run_dir, stage_dir=stage_dir, provider=dict(provider or {}),
                       cache_path=cache_path, prompts=prompts or PromptLibrary(), seed=seed, show_progress=False,
                       client=llm)
    if isinstance(llm, FakeLLM):
        ctx.stats = llm.stats
        ctx.provider.setdefault("model", llm.model)
    return ctx
