"""The LLM-stage tier: one request -> answer -> record loop that every LLM-driven stage shares.

A stage that asks a model something about each record subclasses :class:`LLMStage` and declares

* ``prompt`` (a field: the prompt file in ``prompts/``) and ``answer_schema`` (a pydantic model the JSON
  answer must validate against, or None for free text);
* ``to_vars(record)`` -> the prompt's variables;
* ``from_answer(record, answer, result)`` -> a record, a list of records (fan-out), or a
  :class:`Drop` (the record left out, with a reason code and a human detail).

Per item (``prepare`` may reshape the records into work items first), ``prompt_for(item)`` and
``schema_for(item)`` may choose another prompt or schema, and ``params(item)`` sets sampling parameters.

The base renders the prompt, sends every request through ``ctx.llm`` in one batch, turns failed
requests into ``Drop(record, "llm_<error>")`` (override :meth:`LLMStage.on_error` to keep the record
instead), counts every drop under its reason and writes ONE ``dropped.jsonl`` per stage with the keys
``id, stage, reason, detail, record``. Multi-phase stages call :meth:`LLMStage.run_loop` (the loop without
``finish``) and/or :meth:`LLMStage.ask` once per phase with the same parts and end with
:meth:`LLMStage.finish`::

    class Shout(LLMStage):
        input_type = QAPair
        output_type = QAPair
        answer_schema = ShoutOut
        prompt: str = "shout"

        def to_vars(self, record):
            return {"answer": record.answer}

        def from_answer(self, record, answer, result):
            if not answer.text.endswith("!"):
                return Drop(record, "not_shouted", answer.text[:80])
            return record.model_copy(update={"answer": answer.text})
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field

from synthrun.io import write_jsonl
from synthrun.llm.types import LLMRequest, LLMResult
from synthrun.records import Record
from synthrun.stage import Stage

if TYPE_CHECKING:
    from synthrun.context import StageContext


@dataclass
class Drop:
    """A record left out, with a short reason code (counted in metrics) and a human detail."""

    record: Record
    reason: str
    detail: str = ""

    def row(self, stage: str) -> dict[str, Any]:
        return {"id": self.record.id, "stage": stage, "reason": self.reason, "detail": self.detail,
                "record": self.record.model_dump(mode="json")}


def write_dropped(ctx: Any, drops: list[Drop]) -> None:
    """Write ``dropped.jsonl`` in the stage folder and count each drop under its reason."""
    for drop in drops:
        ctx.fail(drop.reason)
    write_jsonl(ctx.stage_dir / "dropped.jsonl", [d.row(ctx.name) for d in drops])


#: What ``from_answer`` / ``on_error`` may return: a record, several (fan-out), none, or a drop.
Outcome = Record | Sequence[Record] | Drop | None


class LLMStage(Stage):
    """A stage that asks the model once per record (or per phase) and maps answers to records.

    Attributes:
        prompt: Prompt name (``prompts/<name>.yaml``) or path of a prompt file.
        max_tokens: Token budget of one answer.
        temperature: Sampling temperature of the stage's requests (None: the provider's default).
    """

    #: Pydantic model the answer must validate against (None: free text in ``result.text``).
    answer_schema: ClassVar[type[BaseModel] | None] = None
    #: Progress-bar label; defaults to the stage's folder name.
    desc: ClassVar[str] = ""

    prompt: str = ""
    max_tokens: int = Field(default=512, ge=1)
    temperature: float | None = Field(default=0.7, ge=0, le=2)

    # ------------------------------------------------------------------ what a stage declares

    def to_vars(self, record: Any) -> dict[str, Any]:
        """The prompt's variables for ``record``."""
        raise NotImplementedError

    def from_answer(self, record: Any, answer: Any, result: LLMResult) -> Outcome:
        """Map one validated answer (``answer_schema`` instance, or text) to the stage's output."""
        raise NotImplementedError

    def on_error(self, record: Any, result: LLMResult) -> Outcome:
        """What a failed request becomes; by default the record is dropped as ``llm_<error>``."""
        return Drop(record, f"llm_{result.error}", f"the model's answer could not be used ({result.error})")

    def params(self, record: Any) -> dict[str, Any]:
        """Sampling parameters of the request for ``record``."""
        if self.temperature is None:
            return {"max_tokens": self.max_tokens}
        return {"max_tokens": self.max_tokens, "temperature": self.temperature}

    def prepare(self, records: list[Any], ctx: StageContext) -> list[Any]:
        """Records to ask about (override to skip some or to reshape them first)."""
        return records

    def prompt_for(self, item: Any) -> str:
        """The prompt of ``item``'s request (default: the ``prompt`` field)."""
        return self.prompt

    def schema_for(self, item: Any) -> type[BaseModel] | None:
        """The answer schema of ``item``'s request (default: ``answer_schema``)."""
        return self.answer_schema

    # ------------------------------------------------------------------ the loop

    def run(self, records: list[Any], ctx: StageContext) -> list[Record]:
        return self.finish(*self.run_loop(records, ctx), ctx)

    def run_loop(self, records: list[Any], ctx: StageContext) -> tuple[list[Record], list[Drop]]:
        """The loop without :meth:`finish`: ask about every prepared item, sort outcomes into kept and dropped.

        Stages with a later phase (a topic check, de-duplication) call this, work on its output and then
        :meth:`finish` with all drops.
        """
        items = self.prepare(records, ctx)
        results = self.ask(ctx, [(item, self.to_vars(item)) for item in items],
                           prompt=[self.prompt_for(item) for item in items],
                           schema=[self.schema_for(item) for item in items],
                           params=[self.params(item) for item in items])
        out: list[Record] = []
        drops: list[Drop] = []
        for res in results:
            item = res.request.tag
            got = self.from_answer(item, res.parsed if res.request.schema else res.text, res) if res.ok \
                else self.on_error(item, res)
            collect(got, out, drops)
        return out, drops

    def ask(self, ctx: StageContext, items: Iterable[tuple[Any, dict[str, Any]]], *, prompt: str | Sequence[str],
            schema: type[BaseModel] | Sequence[type[BaseModel] | None] | None = None,
            params: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
            messages: Sequence[list[dict[str, Any]]] | None = None, desc: str = "") -> list[LLMResult]:
        """Render ``prompt`` for each ``(tag, variables)`` pair and send all requests in one batch.

        ``prompt``, ``schema`` and ``params`` are one value for every request or a sequence with one per
        item; ``messages`` (one list per item) replaces the rendered prompt for phases that continue a
        conversation. Each result carries its item's tag in ``result.request.tag``; the order is the order
        of ``items``.
        """
        pairs = list(items)
        n = len(pairs)
        prompts = [prompt] * n if isinstance(prompt, str) else list(prompt)
        schemas = list(schema) if isinstance(schema, Sequence) else [schema] * n
        per_item = params if isinstance(params, Sequence) else [params or self.params(None)] * n
        requests = []
        for i, (tag, variables) in enumerate(pairs):
            msgs = messages[i] if messages is not None else ctx.prompts.render(prompts[i], **variables)
            requests.append(LLMRequest(messages=msgs, schema=schemas[i], params=dict(per_item[i]), tag=tag))
        return ctx.llm.map(requests, desc=desc or self.desc or ctx.name) if requests else []

    def finish(self, out: list[Record], drops: list[Drop], ctx: StageContext) -> list[Record]:
        """Write the stage's ``dropped.jsonl``, count kept/dropped in the summary, return ``out``."""
        write_dropped(ctx, drops)
        ctx.summary.setdefault("kept", len(out))
        ctx.summary.setdefault("dropped", len(drops))
        return out


def collect(got: Outcome, out: list[Record], drops: list[Drop]) -> None:
    """Sort one outcome into the kept records or the drops."""
    if got is None:
        return
    if isinstance(got, Drop):
        drops.append(got)
    elif isinstance(got, Record):
        out.append(got)
    else:
        out.extend(got)
