"""The default executor: shards run one after another in this process, sharing one LLM client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING

from synthrun.shards import ShardJob, ShardResult, run_shard

if TYPE_CHECKING:
    from synthrun.context import StageContext


class LocalExecutor:
    """Runs each shard in this process with the stage's own context (its client, counters, cache)."""

    in_process = True

    def start(self) -> LocalExecutor:
        return self

    def close(self) -> None:
        return None

    def run_shards(self, job: ShardJob, shards: Iterator[tuple[int, list[str]]],
                   ctx: StageContext) -> Iterator[ShardResult]:
        with ExitStack() as stack:
            held = False
            for index, lines in shards:
                yield run_shard(job, index, lines, ctx)
                # once the stage has made its client, later shards reuse its loop and connections
                session = getattr(vars(ctx).get("llm"), "session", None)
                if not held and session is not None:
                    stack.enter_context(session())
                    held = True
