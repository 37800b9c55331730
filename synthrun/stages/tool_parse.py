"""Read a tool spec (project JSON, OpenAI, MCP or OpenAPI 3) and emit one record per tool."""

from __future__ import annotations

from typing import ClassVar

from synthrun.context import StageContext
from synthrun.io import write_json
from synthrun.records import Record, ToolRecord, stable_id
from synthrun.stage import Stage, StageError


class ParseTools(Stage):
    """Validate a spec, log a summary, and output its tools (a source stage).

    Side files in the stage folder: ``spec.json`` (the normalised tools) and, with
    ``write_graph``, ``graph.json`` (dependency graph with valid 2- and 3-step chains).

    Attributes:
        spec: Path of the spec (JSON or YAML); ``recipes/data/...`` resolves inside the package.
        format: auto | synthrun | openai | mcp | openapi | bfcl.
        include: Keep only these tools (safe names).
        exclude: Drop these tools.
        write_graph: Also write the dependency graph as ``graph.json``.
        min_confidence: Weakest link that makes a graph edge.
    """

    source: ClassVar[bool] = True
    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = ToolRecord

    spec: str
    format: str = "auto"
    include: list[str] | None = None
    exclude: list[str] = []
    write_graph: bool = True
    min_confidence: float = 0.5

    def run(self, records: list[Record], ctx: StageContext) -> list[ToolRecord]:
        from synthrun.tools.loading import load_spec

        toolset = load_spec(self.spec, self.format)
        tools = toolset.tools
        unknown = [n for n in [*(self.include or []), *self.exclude] if n not in toolset.names]
        if unknown:
            raise StageError(f"{ctx.name}: include/exclude name tools not in the spec: {unknown} "
                             f"(tools: {', '.join(toolset.names)})")
        if self.include:
            tools = [t for t in tools if t.name in self.include]
        tools = [t for t in tools if t.name not in self.exclude]
        if not tools:
            raise StageError(f"{ctx.name}: no tools left after include/exclude")
        toolset = toolset.model_copy(update={"tools": tools})
        summary = toolset.summary()
        ctx.summary.update(summary)
        write_json(ctx.stage_dir / "spec.json", toolset.model_dump(mode="json"))
        if self.write_graph:
            from synthrun.tools.graph import ToolGraph

            graph = ToolGraph(tools, self.min_confidence)
            data = graph.to_json((2, 3), chain_limit=100)
            write_json(ctx.stage_dir / "graph.json", data)
            ctx.summary["graph"] = {"edges": len(data["edges"]), "chains_2": len(data["chains"]["2"]),
                                    "chains_3": len(data["chains"]["3"])}
        cats = ", ".join(f"{k} {v}" for k, v in summary["categories"].items())
        ctx.log.info("spec %s (%s): %d tools [%s]%s", toolset.name, toolset.format, len(tools), cats,
                     f"; renamed {summary['renamed']}" if summary["renamed"] else "")
        return [ToolRecord(id=stable_id(toolset.name, t.name, prefix="tool-"), tool=t, spec_name=toolset.name,
                           spec_format=toolset.format) for t in tools]
