"""Split a chat dataset into train and eval parts, grouped by source chunk so no question leaks."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from pydantic import Field

from synthrun.context import StageContext
from synthrun.finetune.data import RowError, group_of, to_messages
from synthrun.records import Record
from synthrun.stage import Stage, StageError


class Split(Stage):
    """Mark every example ``split: train`` or ``split: eval``.

    Whole groups go to one side: a group is the source chunk in the record's provenance (so every
    question made from one chunk is on the same side), else the first user question. Which groups
    go to eval is decided by a seeded hash, so the same data and seed always give the same split.

    Attributes:
        eval_fraction: Share of groups held out for evaluation.
        min_eval: Hold out at least this many examples (whole groups) when there are two groups or more.
        seed: Changes which groups are held out.
    """

    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    eval_fraction: float = Field(default=0.1, ge=0, lt=1)
    min_eval: int = Field(default=1, ge=0)
    seed: int = 0

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        groups: dict[str, list[int]] = {}
        rows = []
        for i, rec in enumerate(records):
            data = rec.model_dump()
            try:
                messages = data.get("messages") or to_messages(data)
            except RowError as exc:
                raise StageError(f"split: record {rec.id or i}: {exc}") from None
            group = data.get("group") or group_of(data, messages)
            rows.append({**data, "messages": messages, "group": group})
            groups.setdefault(group, []).append(i)
        if not rows:
            raise StageError("split: no examples to split (the input is empty)")

        def rank(name: str) -> str:
            return hashlib.sha256(f"{self.seed}:{name}".encode()).hexdigest()

        order = sorted(groups, key=rank)
        want = max(round(self.eval_fraction * len(rows)), self.min_eval if len(groups) > 1 else 0)
        held: set[str] = set()
        n_eval = 0
        for name in order:
            if n_eval >= want or len(held) + 1 >= len(groups):
                break
            held.add(name)
            n_eval += len(groups[name])
        out = [Record.model_validate({**row, "split": "eval" if row["group"] in held else "train"}) for row in rows]
        ctx.summary.update({"train": len(rows) - n_eval, "eval": n_eval, "groups": len(groups),
                            "eval_groups": len(held), "seed": self.seed})
        return out
