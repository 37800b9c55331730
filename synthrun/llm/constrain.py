"""JSON-schema constrained decoding for the embedded model: schema -> regex -> token automaton.

The schema is compiled to a regular expression by ``outlines_core`` (with bounded integers and
numbers, which it does not enforce itself), and the regex to a token-level automaton over the
local tokenizer's vocabulary. On top of the automaton we compute, for every state, the fewest
tokens still needed to finish the JSON; the decoder only allows tokens that keep the answer
finishable within the remaining token budget, so a rambling model is closed off in time and
every answer parses.

torch and outlines_core are imported lazily (this module is imported by the engine only).
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections import OrderedDict
from typing import Any

# Integer ranges up to this size are spelled out exactly as alternations; wider ones use a
# digit-count bound (and the client's schema validation catches the rare miss).
_MAX_ENUM_RANGE = 1000
_MAX_INT_DIGITS = 12
_MAX_FRACTION_DIGITS = 6
_MARKER = "SYNTHRUNNUMX{}X"
# Keywords whose value maps names to sub-schemas, and keywords whose value is plain data.
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_LITERAL_KEYS = ("enum", "const", "default", "examples", "required", "title", "description")
_SPECIAL_STRING_KEYS = {"pattern", "format", "enum", "const"}

# Loose JSON object for response_format={"type": "json_object"}: flat values, one nesting level.
JSON_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {
        "anyOf": [
            {"type": "string"},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}]}},
        ]
    },
}


def _int_bounds(node: dict[str, Any]) -> tuple[int | None, int | None]:
    lo = node.get("minimum")
    hi = node.get("maximum")
    if "exclusiveMinimum" in node and isinstance(node["exclusiveMinimum"], (int, float)):
        lo = math.floor(node["exclusiveMinimum"]) + 1
    if "exclusiveMaximum" in node and isinstance(node["exclusiveMaximum"], (int, float)):
        hi = math.ceil(node["exclusiveMaximum"]) - 1
    lo = math.ceil(lo) if lo is not None else None
    hi = math.floor(hi) if hi is not None else None
    return lo, hi


def _alternation(values: list[int]) -> str:
    return "(" + "|".join(str(v) for v in values) + ")"


def integer_regex(node: dict[str, Any]) -> str:
    """Regex for a JSON integer honouring ``minimum``/``maximum`` (exclusive variants too)."""
    lo, hi = _int_bounds(node)
    if lo is not None and hi is not None:
        if hi < lo:
            raise ValueError(f"integer schema has an empty range [{lo}, {hi}]")
        if hi - lo <= _MAX_ENUM_RANGE:
            return _alternation(list(range(lo, hi + 1)))
    digits = _MAX_INT_DIGITS
    if hi is not None and lo is not None:
        digits = max(len(str(abs(hi))), len(str(abs(lo))))
    body = f"(0|[1-9][0-9]{{0,{digits - 1}}})"
    if lo is not None and lo >= 0:
        return body
    if hi is not None and hi < 0:
        return f"-([1-9][0-9]{{0,{digits - 1}}})"
    return f"-?{body}"


def number_regex(node: dict[str, Any]) -> str:
    """Regex for a JSON number with a bounded number of digits, honouring common bounds."""
    frac = f"(\\.[0-9]{{1,{_MAX_FRACTION_DIGITS}}})?"
    zero_frac = f"(\\.0{{1,{_MAX_FRACTION_DIGITS}}})?"
    lo = node.get("minimum", node.get("exclusiveMinimum"))
    hi = node.get("maximum", node.get("exclusiveMaximum"))
    if (
        lo is not None
        and hi is not None
        and float(lo).is_integer()
        and float(hi).is_integer()
        and 0 <= lo < hi
        and hi - lo <= _MAX_ENUM_RANGE
    ):
        lo_i, hi_i = int(lo), int(hi)
        below = _alternation(list(range(lo_i, hi_i))) + frac
        return f"({below}|{hi_i}{zero_frac})"
    body = f"(0|[1-9][0-9]{{0,{_MAX_INT_DIGITS - 1}}}){frac}"
    if lo is not None and lo >= 0:
        return body
    return f"-?{body}"


def schema_to_regex(schema: dict[str, Any]) -> str:
    """Compiles a JSON schema (e.g. ``Model.model_json_schema()``) to a regex for its JSON text.

    ``outlines_core`` ignores numeric bounds and lets numbers grow without limit, so every
    integer/number sub-schema is swapped for a marker first and the marker replaced afterwards
    by a bounded regex from :func:`integer_regex` / :func:`number_regex`.
    """
    from outlines_core.json_schema import build_regex_from_schema

    schema = copy.deepcopy(schema)
    replacements: dict[str, str] = {}

    def visit(node: Any) -> Any:
        if isinstance(node, list):
            return [visit(x) for x in node]
        if not isinstance(node, dict):
            return node
        kind = node.get("type")
        if kind == "string" and "maxLength" in node and not _SPECIAL_STRING_KEYS & node.keys():
            # Bounded repetitions multiply the automaton's states (maxLength 200 costs ~2 GB and
            # ~9 s); the length is enforced after decoding by truncate_to_schema instead.
            node = {k: v for k, v in node.items() if k != "maxLength"}
        if kind in ("integer", "number") and "enum" not in node and "const" not in node:
            marker = _MARKER.format(len(replacements))
            replacements[marker] = integer_regex(node) if kind == "integer" else number_regex(node)
            kept = {k: v for k, v in node.items() if k in ("title", "description", "default")}
            return {**kept, "const": marker}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: visit(sub) for name, sub in value.items()}
            elif key in _LITERAL_KEYS:
                out[key] = value
            else:
                out[key] = visit(value)
        return out

    schema = visit(schema)
    regex: str = build_regex_from_schema(json.dumps(schema))
    for marker, sub in replacements.items():
        quoted = f'"{marker}"'
        if quoted not in regex:
            raise ValueError(f"could not place the bound for {marker} in the schema regex")
        regex = regex.replace(quoted, sub)
    return regex


def byte_vocabulary(tokenizer: Any) -> Any:
    """Builds an ``outlines_core.Vocabulary`` from a byte-level BPE tokenizer, offline.

    Token strings such as ``"Ġthe"`` are mapped back to the bytes they stand for (``b" the"``);
    special tokens are left out so the automaton can never emit them (EOS is handled apart).
    """
    from outlines_core import Vocabulary

    byte_of = _unicode_to_bytes()
    special = set(tokenizer.all_special_ids)
    table: dict[bytes, list[int]] = {}
    for text, token_id in tokenizer.get_vocab().items():
        if token_id in special:
            continue
        try:
            raw = bytes(byte_of[ch] for ch in text)
        except KeyError:  # a token outside the byte alphabet (added token): its plain UTF-8
            raw = text.encode("utf-8")
        table.setdefault(raw, []).append(token_id)
    return Vocabulary(tokenizer.eos_token_id, table)


def _unicode_to_bytes() -> dict[str, int]:
    """Inverse of GPT-2's ``bytes_to_unicode`` table used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes, strict=True)}


class JsonConstraint:
    """A compiled schema: the token automaton plus, per state, how far it is from the end.

    Args:
        regex: Regex the JSON text must match.
        vocabulary: ``outlines_core.Vocabulary`` of the model.
        eos_token_id: Id of the token that ends the answer.
    """

    def __init__(self, regex: str, vocabulary: Any, eos_token_id: int, schema: dict[str, Any] | None = None):
        import torch
        from outlines_core import Index

        self.regex = regex
        self.schema = schema
        self.eos_token_id = eos_token_id
        self._truncates = schema is not None and '"maxLength"' in json.dumps(schema)
        self.index = Index(regex, vocabulary)
        self.initial_state = self.index.get_initial_state()
        self.final_states = set(self.index.get_final_states())
        transitions = self.index.get_transitions()
        self.dist = _distances_to_final(transitions, self.final_states)
        self.done_states = {
            s for s in self.final_states if all(t == eos_token_id for t in transitions.get(s, {}))
        }
        # Per state: allowed token ids, and the distance to the end after each of them.
        self._tokens: dict[int, Any] = {}
        self._next_dist: dict[int, Any] = {}
        self._max_next_dist: dict[int, int] = {}
        unreachable = 1 << 30
        for state in list(transitions):
            moves = transitions.pop(state)
            dists = [self.dist.get(s, unreachable) for s in moves.values()]
            self._tokens[state] = torch.tensor(list(moves.keys()), dtype=torch.long)
            self._next_dist[state] = torch.tensor(dists, dtype=torch.int32)
            # max() in Python: a torch reduction over a large state starts an OpenMP team in this
            # (submitting) thread, only for submit to release it again (see synthrun/llm/openmp.py).
            self._max_next_dist[state] = max(dists, default=0)
        self.min_tokens = self.dist.get(self.initial_state, unreachable)
        if self.min_tokens >= unreachable:
            raise ValueError("the schema admits no finite JSON text")

    def allowed(self, state: int, remaining: int) -> Any:
        """Token ids allowed in ``state`` when at most ``remaining`` tokens (this one included) are left.

        Only tokens after which the JSON can still be finished in ``remaining - 1`` tokens are kept;
        when even that is impossible, the tokens that get closest to the end.
        """
        toks = self._tokens.get(state)
        if toks is None:
            return None
        budget = remaining - 1
        if self._max_next_dist[state] <= budget:
            return toks
        nd = self._next_dist[state]
        keep = nd <= budget
        if not bool(keep.any()):
            keep = nd == nd.min()
        return toks[keep]

    def forced(self, state: int, remaining: int) -> bool:
        """Whether the budget currently removes some of the tokens the automaton allows."""
        return self._max_next_dist.get(state, 0) > remaining - 1

    def next_state(self, state: int, token_id: int) -> int | None:
        nxt: int | None = self.index.get_next_state(state, token_id)
        return nxt

    def is_final(self, state: int) -> bool:
        return state in self.final_states

    def is_done(self, state: int) -> bool:
        """Final and nothing but EOS may follow: the JSON text is complete."""
        return state in self.done_states

    def finalize(self, text: str) -> str:
        """Applies the string ``maxLength`` limits the automaton left out (re-serializing if needed)."""
        if not self._truncates or self.schema is None:
            return text
        try:
            value = json.loads(text)
        except ValueError:
            return text
        fixed, changed = truncate_to_schema(value, self.schema, self.schema)
        return json.dumps(fixed, ensure_ascii=False) if changed else text


def _distances_to_final(transitions: dict[int, dict[int, int]], finals: set[int]) -> dict[int, int]:
    """Fewest tokens from each state to a final state (reverse breadth-first search)."""
    reverse: dict[int, set[int]] = {}
    for src, moves in transitions.items():
        for dst in set(moves.values()):
            if dst != src:
                reverse.setdefault(dst, set()).add(src)
    dist = {s: 0 for s in finals}
    frontier = list(finals)
    while frontier:
        nxt = []
        for s in frontier:
            for p in reverse.get(s, ()):
                if p not in dist:
                    dist[p] = dist[s] + 1
                    nxt.append(p)
        frontier = nxt
    return dist


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target
    return node


def _matches_type(value: Any, node: dict[str, Any]) -> bool:
    kinds = node.get("type")
    if kinds is None:
        return True
    kinds = kinds if isinstance(kinds, list) else [kinds]
    checks = {
        "string": lambda v: isinstance(v, str),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "null": lambda v: v is None,
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    }
    return any(checks.get(k, lambda v: True)(value) for k in kinds)


def truncate_to_schema(value: Any, node: Any, root: dict[str, Any]) -> tuple[Any, bool]:
    """Cuts strings longer than their schema's ``maxLength``; returns ``(value, changed)``."""
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return value, False
    for key in ("anyOf", "oneOf"):
        for option in node.get(key, []):
            option = _resolve(option, root)
            if isinstance(option, dict) and _matches_type(value, option):
                return truncate_to_schema(value, option, root)
    for option in node.get("allOf", []):
        value, changed = truncate_to_schema(value, option, root)
        if changed:
            return value, True
    if isinstance(value, str) and isinstance(node.get("maxLength"), int) and len(value) > node["maxLength"]:
        return value[: node["maxLength"]], True
    changed = False
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, item in list(value.items()):
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                value[key], c = truncate_to_schema(item, sub, root)
                changed = changed or c
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            value[i], c = truncate_to_schema(item, node["items"], root)
            changed = changed or c
    return value, changed


class ConstraintCache:
    """Thread-safe LRU of compiled :class:`JsonConstraint` objects keyed by the schema's JSON."""

    def __init__(self, vocabulary: Any, eos_token_id: int, size: int = 64):
        self.vocabulary = vocabulary
        self.eos_token_id = eos_token_id
        self.size = size
        self._items: OrderedDict[str, JsonConstraint] = OrderedDict()
        self._lock = threading.Lock()
        self._compiling: dict[str, threading.Lock] = {}  # one compile per schema at a time

    def get(self, schema: dict[str, Any]) -> JsonConstraint:
        """The compiled schema; concurrent callers asking for the same new schema share one compile."""
        key = json.dumps(schema, sort_keys=True)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gate = self._compiling.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._items:  # compiled by the caller we waited for
                    self._items.move_to_end(key)
                    return self._items[key]
            try:
                compiled = JsonConstraint(schema_to_regex(schema), self.vocabulary, self.eos_token_id, schema)
            except BaseException:
                with self._lock:
                    self._compiling.pop(key, None)
                raise
            with self._lock:
                self._items[key] = compiled
                self._compiling.pop(key, None)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return compiled
