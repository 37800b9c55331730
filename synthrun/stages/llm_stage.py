"""Shared parts of LLM-driven and filtering stages: one ``dropped.jsonl`` shape for every drop.

Issue 9's ``LLMStage`` tier will own the whole request -> answer -> record loop; this module holds
the parts the judge and the filter already share with it: a :class:`Drop` (what ``from_answer``
returns instead of a record) and :func:`write_dropped`, which writes one row per drop with the keys
``id, stage, reason, detail, record``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthrun.io import write_jsonl
from synthrun.records import Record


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
