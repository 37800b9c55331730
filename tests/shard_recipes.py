"""Shared by the shard, executor and launcher tests (and benchmarks/scale.py): a small rating recipe
(load JSONL -> rate with the LLM judge -> export) written to a recipe folder, its input, and a
per-record probe stage that notes every batch it is handed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from synthrun.context import StageContext
from synthrun.records import Record
from synthrun.stage import Stage

RATE_RECIPE = """# @package _global_
recipe_name: {name}
allow_targets: [tests.shard_recipes.]
stages: [load, probe, curate, export]
load:
  _target_: synthrun.stages.load_records.LoadRecords
  path: {data}
probe:
  _target_: tests.shard_recipes.BatchProbe
curate:
  _target_: synthrun.stages.curate.Curate
  threshold: 5
export:
  _target_: synthrun.stages.export.Export
  format: chatml
"""


class BatchProbe(Stage):
    """A per-record stage that changes nothing but notes the size of each call in ``batches.jsonl``."""

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        with open(ctx.stage_dir / "batches.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"n": len(records)}) + "\n")
        return [r.model_copy(update={"probed": True}) for r in records]


def qa_rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"q{i:05d}", "question": f"What does item {i} do?", "answer": f"Item {i} stores value {i * 7}.",
             "provenance": {"source_text": f"Item {i} stores value {i * 7} in the table."}} for i in range(n)]


def write_rate_recipe(root: Path, n: int, name: str = "shardy") -> Path:
    """Write ``root/recipes/NAME.yaml`` and its ``n`` input rows; return the recipe folder."""
    recipes = root / "recipes"
    recipes.mkdir(parents=True, exist_ok=True)
    data = root / f"{name}_in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in qa_rows(n)))
    (recipes / f"{name}.yaml").write_text(RATE_RECIPE.format(name=name, data=data))
    return recipes


def provider_args(base_url: str, concurrency: int = 4) -> list[str]:
    return ["provider=vllm", f"provider.api_base={base_url}", "provider.model=hosted_vllm/fake",
            f"provider.concurrency={concurrency}", "progress=false"]
