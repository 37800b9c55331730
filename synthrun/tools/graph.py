"""The tool dependency graph (In-N-Out): an edge a -> b when a's output can feed one of b's inputs.

Edges come from types first and names second:

* both sides semantic (``file_handle`` -> ``group_handle``): confidence 1.0 when every member
  of the output's union fits, 0.8 when some do; an element of a list result (``$step1[0]``)
  0.75, a field of an object result (``$step1.field``) 0.9;
* plain JSON types: 0.3 + 0.6 x (share of the parameter's name tokens found in the output's
  name/description), 0.9 when a result field has the parameter's exact name; an untyped
  (``any``) output only counts by name (0.2 + 0.5 x overlap).

A result is only *bound* to a parameter (passed as ``$stepN...``) when its type fits: an untyped
(``any``) result or element makes an edge by name, but the parameter stays for the model to
write (it sees the result in the history), so ``{"status": "ok"}`` never lands in a ``number``.

Edges below ``min_confidence`` are dropped. A chain ``a -> b -> c`` is valid when every
consecutive pair has an edge and every required *handle* input is fed by an earlier step (a
user can type a file name, not a handle).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from synthrun.tools.spec import ParamSpec, ToolSpec, TypeSystem, type_from_schema, type_parts

_STOP = {"the", "a", "an", "of", "to", "and", "or", "in", "for", "by", "with", "on", "is", "get", "list",
         "from", "returned", "return", "returns", "value", "values", "its", "it", "as", "at", "one", "all"}
_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def tokens(*texts: str) -> set[str]:
    """Lower-case content words (``userId`` -> {user, id}; plural ``s`` dropped)."""
    out = set()
    for text in texts:
        for tok in _SPLIT.split(text or ""):
            tok = tok.lower()
            if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss"):
                tok = tok[:-1]
            if tok and tok not in _STOP:
                out.add(tok)
    return out


@dataclass
class Binding:
    """Where one input of a chain step comes from."""

    param: str
    source: int
    accessor: str = ""
    confidence: float = 1.0
    reason: str = ""

    @property
    def ref(self) -> str:
        """The ``$stepN`` reference (1-based) a generated call uses for this input."""
        return f"$step{self.source + 1}{self.accessor}"


@dataclass
class ChainCheck:
    """Result of validating a chain."""

    chain: list[str]
    valid: bool
    problems: list[str] = field(default_factory=list)
    bindings: list[list[Binding]] = field(default_factory=list)
    confidence: float = 0.0


class ToolGraph:
    """Dependency graph over a set of tools (a ``networkx.DiGraph`` in :attr:`graph`).

    Args:
        tools: The tools.
        min_confidence: Weakest link that still makes an edge.
    """

    def __init__(self, tools: list[ToolSpec], min_confidence: float = 0.5):
        import networkx as nx

        self.tools = {t.name: t for t in tools}
        types: dict = {}
        for t in tools:
            types.update(t.types)
        self.ts = TypeSystem(types)
        self.min_confidence = min_confidence
        self.graph = nx.DiGraph()
        for t in tools:
            self.graph.add_node(t.name, category=t.category, complexity=t.complexity, output=t.returns.type,
                                inputs={p.name: p.type for p in t.parameters}, standalone=self.is_standalone(t.name))
        for a in tools:
            outs = self._outputs(a)
            for b in tools:
                if a.name == b.name:
                    continue
                links = [lk for lk in (self._best_link(p, outs) for p in b.parameters)
                         if lk and lk["confidence"] >= min_confidence]
                if links:
                    self.graph.add_edge(a.name, b.name, confidence=max(lk["confidence"] for lk in links), links=links)

    # ------------------------------------------------------------------ links

    def _outputs(self, tool: ToolSpec) -> list[tuple[str, str, set[str]]]:
        """(accessor, type, name tokens) of the whole result, its elements and its fields."""
        rt = tool.returns.type
        outs = [("", rt, tokens(tool.name, tool.returns.description, *[p for p in type_parts(rt) if p != "any"]))]
        schema = tool.returns.json_schema or {}
        for part in type_parts(rt):
            td = self.ts.get(part) if self.ts.is_semantic(part) else None
            if td and td.items:
                outs.append(("[0]", td.items, tokens(td.items, tool.returns.description)))
            elif part == "array" and isinstance(schema.get("items"), dict):
                outs.append(("[0]", type_from_schema(schema["items"]), tokens(tool.returns.description)))
            props = dict(td.properties) if td else {}
            if part == "object" and isinstance(schema.get("properties"), dict):
                props.update({k: type_from_schema(v) for k, v in schema["properties"].items() if isinstance(v, dict)})
            for fname, ftype in props.items():
                outs.append((f".{fname}", ftype, tokens(fname)))
        return outs

    def _semantic(self, type_str: str) -> bool:
        return any(self.ts.is_semantic(p) for p in type_parts(type_str))

    def bindable(self, param_type: str, out_type: str) -> bool:
        """True when a value of ``out_type`` may be passed to a parameter of ``param_type`` as is.

        An untyped result fits only an untyped parameter: its runtime value is unknown here.
        """
        if "any" in type_parts(out_type) and "any" not in type_parts(param_type):
            return False
        return self.ts.accepts(param_type, out_type) > 0

    def _score(self, param: ParamSpec, accessor: str, out_type: str, out_tokens: set[str]) -> tuple[float, str]:
        fit = self.ts.accepts(param.type, out_type)
        if fit == 0.0:
            return 0.0, ""
        if self._semantic(param.type) and self._semantic(out_type):
            factor = 1.0 if not accessor else (0.75 if accessor.startswith("[") else 0.9)
            return round(fit * factor, 3), f"type {out_type} fits {param.type}"
        ptoks = tokens(param.name)
        overlap = len(ptoks & out_tokens) / len(ptoks) if ptoks else 0.0
        if accessor.startswith(".") and accessor[1:] == param.name:
            return 0.9, f"field {accessor[1:]} has the parameter's name"
        if "any" in type_parts(out_type):
            return round(0.2 + 0.5 * overlap, 3), f"untyped result, name overlap {overlap:.2f}"
        return round(0.3 + 0.6 * overlap, 3), f"{out_type} -> {param.type}, name overlap {overlap:.2f}"

    def _best_link(self, param: ParamSpec, outs: list[tuple[str, str, set[str]]]) -> dict[str, Any] | None:
        best = None
        for accessor, out_type, out_tokens in outs:
            conf, reason = self._score(param, accessor, out_type, out_tokens)
            bind = self.bindable(param.type, out_type)
            better = best is None or (bind, conf) > (best["bind"], best["confidence"])
            if conf > 0 and better:
                best = {"param": param.name, "accessor": accessor, "confidence": conf, "reason": reason,
                        "bind": bind}
        return best

    # ------------------------------------------------------------------ queries

    def is_standalone(self, name: str) -> bool:
        """True when the tool needs no handle from an earlier call (a user request alone can drive it)."""
        tool = self.tools[name]
        return not any(p.required and self.ts.is_handle(p.type) for p in tool.parameters)

    def edge(self, a: str, b: str) -> dict[str, Any] | None:
        return dict(self.graph.edges[a, b]) if self.graph.has_edge(a, b) else None

    def dependents(self, name: str) -> dict[str, Any]:
        """Tools that can consume ``name``'s output (directly, and anywhere downstream)."""
        import networkx as nx

        if name not in self.tools:
            raise KeyError(f"no tool named {name!r}")
        direct = sorted(
            ({"tool": b, "confidence": d["confidence"], "params": [lk["param"] for lk in d["links"]]}
             for _, b, d in self.graph.out_edges(name, data=True)),
            key=lambda x: (-x["confidence"], x["tool"]))
        return {"tool": name, "direct": direct, "downstream": sorted(nx.descendants(self.graph, name)),
                "upstream": sorted(nx.ancestors(self.graph, name))}

    def validate_chain(self, chain: list[str] | str) -> ChainCheck:
        """Check a chain (a list or ``"a->b->c"``) and work out where each handle input comes from."""
        if isinstance(chain, str):
            chain = [c.strip() for c in re.split(r"->|,|>", chain) if c.strip()]
        check = ChainCheck(chain=list(chain), valid=True, confidence=1.0 if chain else 0.0)
        if not chain:
            check.valid = False
            check.problems.append("empty chain")
            return check
        for i, name in enumerate(chain):
            tool = self.tools.get(name)
            if tool is None:
                check.valid = False
                check.problems.append(f"step {i + 1}: unknown tool {name!r}")
                check.bindings.append([])
                continue
            bound: dict[str, Binding] = {}
            if i > 0 and chain[i - 1] in self.tools:
                prev = chain[i - 1]
                data = self.edge(prev, name)
                if data is None:
                    check.valid = False
                    check.problems.append(f"step {i + 1}: no edge {prev} -> {name} (nothing {prev} returns "
                                          f"fits an input of {name})")
                else:
                    check.confidence = min(check.confidence, data["confidence"])
                    for lk in data["links"]:
                        if lk.get("bind", True):  # an untyped result is shown to the model, not passed on
                            bound[lk["param"]] = Binding(lk["param"], i - 1, lk["accessor"], lk["confidence"],
                                                         lk["reason"])
            for p in tool.parameters:
                if p.name in bound or not (p.required and self.ts.is_handle(p.type)):
                    continue
                source = self._earlier_producer(chain[:i], p)
                if source is None:
                    check.valid = False
                    check.problems.append(f"step {i + 1}: {name} needs {p.name} ({p.type}) but no earlier step returns one")
                else:
                    bound[p.name] = source
            # a consecutive edge may link a plain input while a handle input is also needed: keep both
            check.bindings.append(list(bound.values()))
        if not check.valid:
            check.confidence = 0.0
        return check

    def _earlier_producer(self, prefix: list[str], param: ParamSpec) -> Binding | None:
        for j in range(len(prefix) - 1, -1, -1):
            tool = self.tools.get(prefix[j])
            if tool is None:
                continue
            link = self._best_link(param, self._outputs(tool))
            if link and link["bind"] and self._semantic(param.type) and link["confidence"] >= self.min_confidence:
                return Binding(param.name, j, link["accessor"], link["confidence"], link["reason"])
        return None

    def chains(self, k: int, limit: int | None = None, start: str | None = None) -> list[list[str]]:
        """Valid chains of exactly ``k`` distinct tools (depth-first, in tool order; at most ``limit``)."""
        out: list[list[str]] = []
        starts = [start] if start else [n for n in self.tools if self.is_standalone(n)]

        def grow(chain: list[str]) -> bool:
            if len(chain) == k:
                out.append(list(chain))
                return limit is not None and len(out) >= limit
            for nxt in sorted(self.graph.successors(chain[-1])):
                if nxt in chain:
                    continue
                if self.validate_chain([*chain, nxt]).valid and grow([*chain, nxt]):
                    return True
            return False

        for s in starts:
            if s in self.tools and self.validate_chain([s]).valid and grow([s]):
                break
        return out

    def sample_chain(self, rng: random.Random, min_steps: int = 2, max_steps: int = 4, start: str | None = None,
                     tries: int = 50) -> ChainCheck | None:
        """A random valid chain of ``min_steps``..``max_steps`` tools (edges weighted by confidence)."""
        starts = [start] if start else [n for n in self.tools if self.is_standalone(n)]
        for _ in range(tries):
            target = rng.randint(min_steps, max_steps)
            chain = [rng.choice(starts)]
            while len(chain) < target:
                options = [b for b in self.graph.successors(chain[-1])
                           if b not in chain and self.validate_chain([*chain, b]).valid]
                if not options:
                    break
                weights = [self.graph.edges[chain[-1], b]["confidence"] for b in options]
                chain.append(rng.choices(options, weights=weights)[0])
            if len(chain) >= min_steps:
                return self.validate_chain(chain)
        return None

    def prerequisites(self, target: str, max_steps: int = 4, rng: random.Random | None = None) -> list[str] | None:
        """A shortest valid chain ending with ``target`` (just ``[target]`` when it is standalone)."""
        if target not in self.tools:
            raise KeyError(f"no tool named {target!r}")
        rng = rng or random.Random(0)
        for length in range(1, max_steps + 1):
            found: list[list[str]] = []
            self._back([target], length, found)
            if found:
                return rng.choice(found)
        return None

    def _back(self, chain: list[str], length: int, found: list[list[str]]) -> None:
        """Collect valid chains of ``length`` that end with ``chain`` (grown backwards)."""
        if len(chain) == length:
            if self.validate_chain(chain).valid:
                found.append(chain)
            return
        for pred in sorted(self.graph.predecessors(chain[0])):
            if pred not in chain:
                self._back([pred, *chain], length, found)

    def valid_next(self, chain: list[str], candidates: list[str] | None = None) -> list[str]:
        """Tools that can follow ``chain`` (consecutive edge, handle inputs satisfiable, not used yet)."""
        names = candidates if candidates is not None else list(self.tools)
        if not chain:
            return [n for n in names if n in self.tools and self.is_standalone(n)]
        return [n for n in names if n not in chain and n in self.tools and self.validate_chain([*chain, n]).valid]

    def to_json(self, chain_lengths: tuple[int, ...] = (2, 3), chain_limit: int = 200) -> dict[str, Any]:
        """Nodes, edges and valid chains, ready for ``json.dump``."""
        nodes = [{"id": n, **{k: v for k, v in d.items()}} for n, d in self.graph.nodes(data=True)]
        edges = [{"source": a, "target": b, "confidence": d["confidence"], "links": d["links"]}
                 for a, b, d in self.graph.edges(data=True)]
        return {"nodes": nodes, "edges": edges, "min_confidence": self.min_confidence,
                "chains": {str(k): self.chains(k, limit=chain_limit) for k in chain_lengths}}
