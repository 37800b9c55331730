"""Chain-first tool-use examples (ToolGrad): sample a valid call chain, run it, then write its request."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from synthrun.context import StageContext
from synthrun.records import Record, ToolRecord
from synthrun.stages.tool_generate_base import ToolGenerateBase
from synthrun.tools.generation import Plan


class GenerateToolChains(ToolGenerateBase):
    """Sample chains of ``min_steps``..``max_steps`` tools from the dependency graph and write
    an example for each; ``hybrid`` mixes in query-first examples.

    Attributes:
        strategy: ``chain`` (all chain-first) or ``hybrid`` (``chain_ratio`` chain-first, the
            rest query-first with ``query_mode`` / ``selection``).
        chain_ratio: Share of chain-first examples in ``hybrid``.
        query_mode: Mode of the query-first part (single | multi | auto).
        selection: Tool selection of the query-first part (guided | free).
    """

    strategy: Literal["chain", "hybrid"] = "chain"
    chain_ratio: float = Field(default=0.7, ge=0, le=1)
    query_mode: Literal["single", "multi", "auto"] = "auto"
    selection: Literal["guided", "free"] = "guided"

    def run(self, records: list[ToolRecord], ctx: StageContext) -> list[Record]:
        planner, writer, rng = self._setup(records, ctx)
        ratio = 1.0 if self.strategy == "chain" else self.chain_ratio

        def make_plan(i: int) -> Plan | None:
            # an even spread: example i is chain-first when it moves the running share up to the ratio
            chain_first = int((i + 1) * ratio) > int(i * ratio)
            if chain_first:
                plan = planner.plan_chain_first(i, rng, self.min_steps, self.max_steps)
                if plan is not None:
                    return plan
                ctx.fail("no_valid_chain")
            return planner.plan_query_first(i, self.query_mode, self.selection, rng)

        out = self._generate(planner, writer, make_plan, ctx)
        ctx.summary["chain_first"] = sum(getattr(ex, "metadata", {}).get("strategy") == "chain_first" for ex in out)
        return out
