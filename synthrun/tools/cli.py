"""``synthrun tools ...``: inspect a tool spec and its dependency graph without running a recipe.

    synthrun tools parse SPEC [--format F]
    synthrun tools graph SPEC [--json OUT] [--chains K] [--validate a->b->c] [--dependents TOOL]

Exit codes: 0 ok, 1 an invalid chain (``--validate``), 2 a bad spec or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

FORMATS = ("auto", "synthrun", "openai", "mcp", "openapi", "bfcl")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr (``synthrun tools graph: error: ...``), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="synthrun tools", description="Inspect tool specs and their dependency graph.")
    sub = p.add_subparsers(dest="command", required=True)
    parse = sub.add_parser("parse", help="validate a spec and print a summary")
    parse.add_argument("spec", help="spec file: synthrun JSON, OpenAI tools, MCP tool list, OpenAPI 3 (JSON/YAML), BFCL JSON Lines")
    parse.add_argument("--format", default="auto", choices=FORMATS)
    graph = sub.add_parser("graph", help="build the dependency graph (In-N-Out)")
    graph.add_argument("spec")
    graph.add_argument("--format", default="auto", choices=FORMATS)
    graph.add_argument("--json", metavar="OUT", help="write nodes, edges and valid chains to this file")
    graph.add_argument("--chains", type=_at_least_one, metavar="K", help="list valid chains of K tools (K >= 1)")
    graph.add_argument("--limit", type=_at_least_one, default=50, help="most chains to list (default 50)")
    graph.add_argument("--validate", metavar="A->B->C", help="check one chain")
    graph.add_argument("--dependents", metavar="TOOL", help="show what can consume TOOL's output")
    graph.add_argument("--min-confidence", type=float, default=0.5, help="weakest link that makes an edge")
    return p


def _print_parse(toolset) -> None:
    s = toolset.summary()
    print(f"{s['name']} ({s['format']}): {s['tools']} tools from {s['source']}")
    print("categories: " + ", ".join(f"{k} {v}" for k, v in s["categories"].items()))
    print("complexity: " + ", ".join(f"{k} {v}" for k, v in s["complexity"].items() if v))
    for tool in toolset.tools:
        params = ", ".join(f"{p.name}{'' if p.required else '?'}: {p.type}" for p in tool.parameters)
        print(f"  {tool.name}({params}) -> {tool.returns.type}  [{tool.category}, {tool.complexity}]")
    for safe, original in s["renamed"].items():
        print(f"renamed: {original!r} -> {safe}")


def _graph(args, toolset) -> int:
    from synthrun.tools.graph import ToolGraph

    g = ToolGraph(toolset.tools, args.min_confidence)
    print(f"{toolset.name}: {g.graph.number_of_nodes()} tools, {g.graph.number_of_edges()} edges "
          f"(min confidence {args.min_confidence})")
    code = 0
    if args.validate:
        check = g.validate_chain(args.validate)
        print(f"{' -> '.join(check.chain)}: {'VALID' if check.valid else 'INVALID'}"
              + (f" (confidence {check.confidence:.2f})" if check.valid else ""))
        for problem in check.problems:
            print(f"  - {problem}")
        for i, step in enumerate(check.bindings, 1):
            if step:
                print(f"  step {i}: " + ", ".join(f"{b.param}={b.ref}" for b in step))
        code = 0 if check.valid else 1
    if args.dependents:
        try:
            deps = g.dependents(args.dependents)
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
        print(f"direct dependents of {args.dependents}:")
        for d in deps["direct"]:
            print(f"  {d['tool']} ({', '.join(d['params'])}; confidence {d['confidence']:.2f})")
        print("downstream: " + (", ".join(deps["downstream"]) or "none"))
        print("upstream: " + (", ".join(deps["upstream"]) or "none"))
    if args.chains:
        chains = g.chains(args.chains, limit=args.limit)
        print(f"valid chains of {args.chains} tools ({len(chains)}{'+' if len(chains) == args.limit else ''}):")
        for c in chains:
            print("  " + " -> ".join(c))
    if args.json:
        from pathlib import Path

        lengths = tuple(sorted({2, 3, *([args.chains] if args.chains else [])}))
        data = g.to_json(lengths, chain_limit=args.limit)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return code


def main(argv: list[str]) -> int:
    """Run ``synthrun tools`` with ``argv`` (the words after ``tools``); return the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the problem
        return int(exc.code or 0)
    from synthrun.tools.loading import load_spec
    from synthrun.tools.spec import SpecError

    try:
        toolset = load_spec(args.spec, args.format)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "parse":
        _print_parse(toolset)
        return 0
    return _graph(args, toolset)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
