"""Query-first tool-use examples: a request for a target tool, then the calls that answer it."""

from __future__ import annotations

from typing import Literal

from synthrun.context import StageContext
from synthrun.errors import StageError
from synthrun.records import Record, ToolRecord
from synthrun.stages.tool_generate_base import ToolGenerateBase
from synthrun.tools.generation import Plan


class GenerateToolExamples(ToolGenerateBase):
    """Write tool-use examples: instruction, reasoning path (thought, tool, args), final answer.

    Each example offers the API documentation of the needed tools plus distractors (Gorilla),
    and its calls are run live while writing so later calls build on real results.

    Attributes:
        mode: ``single`` (one call of a tool that needs nothing earlier), ``multi`` (2..max_steps
            calls: the target, the calls it depends on, and follow-ups) or ``auto`` (by the target
            tool's complexity: simple -> just what it needs, medium -> up to 3 calls, complex ->
            up to ``max_steps``).
        selection: ``guided`` (the planned tools are called in order; the model writes the
            request, thoughts and arguments) or ``free`` (the model also picks each next tool,
            from an enum of the offered tools that can run at that point, or "finish").
        targets: Only use these tools as targets (default: all, in rotation).
    """

    mode: Literal["single", "multi", "auto"] = "auto"
    selection: Literal["guided", "free"] = "guided"
    targets: list[str] | None = None

    def run(self, records: list[ToolRecord], ctx: StageContext) -> list[Record]:
        planner, writer, rng = self._setup(records, ctx)
        names = list(self.targets or planner.tools)
        missing = [n for n in names if n not in planner.tools]
        if missing:
            planner.engine.close()
            raise StageError(f"{ctx.name}: targets not in the spec: {missing}")
        rng.shuffle(names)

        def make_plan(i: int) -> Plan | None:
            plan = planner.plan_query_first(i, self.mode, self.selection, rng, target=names[i % len(names)])
            return plan or planner.plan_query_first(i, self.mode, self.selection, rng)

        return self._generate(planner, writer, make_plan, ctx)
