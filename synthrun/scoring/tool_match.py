"""Does the chosen tool fit the request, or does another offered tool fit it clearly better?

A 135M judge cannot see a wrong tool by answering yes/no, so the tool checks compare tools
directly. Every offered tool is scored against the request by

* the cosine of MiniLM embeddings of the request and of the tool's text (name, description,
  parameter names and descriptions); file names in the request are typed (``file climate.h5``)
  so a request about a file leans to the tools that take files;
* lexical overlap: the request's words (stemmed) that occur in the tool's text, each weighted by
  its rarity among the offered tools (a word every tool has tells nothing).

``score = cosine + lexical_weight x overlap``. For every step whose result the answer relies on
(the "leaf" calls: see :func:`~synthrun.scoring.tool_gates.answered_steps`), the margin is the
best score of an offered tool the example never calls minus the chosen tool's score; the check
fails (``tool_not_best_match``) when the largest margin is above ``margin``. Tools the example calls
elsewhere (``open_file`` before ``read_attribute``) and tools that only return a handle never compete.

With ``task_words`` (the default) a rival must also fit better on the request's *task* words: the
request with the objects the calls are given (file names, dataset and group paths, the last part
of a path) taken out (:func:`task_text`), so "What is the shape of /measurements/pressure in
climate.h5?" is also judged as "What is the shape of in?". A rival's margin is the smaller of the two.
With all 25 HDF5 tools offered the broad file-level tools (``hdf5_parallel_scan``: "report shape,
dtype, size and layout") fit the object names about as well as any sibling and won on them alone;
on the task words the specific tool wins (benchmarks/tool_match_tuning.py: the stress case).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from synthrun.records import ToolExample
from synthrun.tools.spec import ToolSpec

_TOKEN = re.compile(r"[a-z0-9]+")
_FILE = re.compile(r"(?<![\w/])([\w./-]+\.[A-Za-z]\w{0,5})\b")
#: Words that carry no task: never counted by the lexical overlap.
STOP = frozenset(
    "a an the and or but of to in on at by for with from into about as is are was were be been it its this that "
    "these those there here what which who whom how do does did can could would will shall should may might "
    "please me my i you your we us our they them their some any all each every one me have has had if then so "
    "than too very just also not no".split()
)


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def words(text: str) -> set[str]:
    """Stemmed content words of ``text`` (``list_keys`` -> list, key)."""
    return {_stem(w) for w in _TOKEN.findall(text.lower().replace("_", " ")) if w not in STOP}


def tool_text(tool: ToolSpec) -> str:
    """What a tool is about, as one line: name words, description, parameters."""
    name = re.sub(r"[_.\-]+", " ", tool.name)
    params = "; ".join(f"{p.name.replace('_', ' ')} ({p.description or ''})" for p in tool.parameters)
    return f"{name}: {tool.description or ''} Parameters: {params}"


def request_text(request: str) -> str:
    """The request with its file names typed (``climate.h5`` -> ``file climate.h5``)."""
    return _FILE.sub(lambda m: "file " + m.group(1), request)


def lexical_scores(request: str, tools: Sequence[ToolSpec]) -> list[float]:
    """Rarity-weighted overlap of the request's words with every tool's text."""
    docs = [words(tool_text(t)) for t in tools]
    n = len(docs)
    out = []
    for doc in docs:
        score = 0.0
        for w in words(request) & doc:
            df = sum(w in d for d in docs)
            score += math.log((n + 1) / df)
        out.append(score)
    return out


@lru_cache(maxsize=2)
def _embedder(model: str) -> Any:
    from synthrun.embeddings import Embedder

    # Float vectors: the best_tool knobs were tuned on them, and int8 ones cost the checks ROC-AUC
    # (wrong_tool 0.934 -> 0.893 on tests/data/judge/tool_dev.jsonl); the texts here are few.
    return Embedder(model, cache_dir=None, prefer_int8=False)


_VECTORS: dict[tuple[str, str], Any] = {}


def embedding_scores(request: str, tools: Sequence[ToolSpec], model: str) -> list[float]:
    """Cosine of the (typed) request with every tool's text (MiniLM; vectors kept in memory)."""
    texts = [request_text(request), *(tool_text(t) for t in tools)]
    missing = list(dict.fromkeys(t for t in texts if (model, t) not in _VECTORS))
    if missing:
        if len(_VECTORS) > 20000:
            _VECTORS.clear()
        for text, vec in zip(missing, _embedder(model).embed(missing), strict=True):
            _VECTORS[(model, text)] = vec
    req = _VECTORS[(model, texts[0])]
    return [float(req @ _VECTORS[(model, t)]) for t in texts[1:]]


def returns_handle(tool: ToolSpec, tools: Sequence[ToolSpec]) -> bool:
    """True for a tool whose result is only a handle (``open_file``): it answers nothing itself."""
    from synthrun.tools.spec import TypeSystem

    types: dict[str, Any] = {}
    for t in tools:
        types.update(t.types)
    try:
        return tool.returns.type != "any" and TypeSystem(types).is_handle(tool.returns.type)
    except (KeyError, AttributeError, ValueError):
        return False


_OBJECT = re.compile(r"/|\.[A-Za-z]\w{0,5}$")


def task_text(example: ToolExample) -> str:
    """The request without the objects its calls are given: file names and paths (and a path's last part)."""
    from synthrun.scoring.tool_gates import parse_ref, scalars

    request = example.instruction or ""
    names: set[str] = set()
    for step in example.reasoning_path:
        for _, value in scalars(step.args):
            if isinstance(value, str) and parse_ref(value) is None and _OBJECT.search(value):
                names.update({value, value.strip("/"), value.rstrip("/").rsplit("/", 1)[-1]})
    for name in sorted((n for n in names if len(n) >= 2), key=len, reverse=True):
        request = re.sub(re.escape(name), "", request, flags=re.IGNORECASE)
    return request


def scores(request: str, tools: Sequence[ToolSpec], model: str | None, lexical_weight: float) -> list[float]:
    """``cosine + lexical_weight x overlap`` of the request with every tool."""
    lexical = lexical_scores(request, tools)
    cosine = embedding_scores(request, tools, model) if model and request.strip() else [0.0] * len(tools)
    return [c + lexical_weight * lx for c, lx in zip(cosine, lexical, strict=True)]


@dataclass
class Match:
    """The outcome for one example: the largest margin and the tools behind it."""

    margin: float
    step: int = 0
    chosen: str = ""
    better: str = ""


def best_match(example: ToolExample, tools: Sequence[ToolSpec], model: str | None,
               lexical_weight: float, task_words: bool = True) -> Match:
    """How much better than the chosen tool another offered (never called) tool fits the request."""
    request = example.instruction or ""
    called = {s.tool for s in example.reasoning_path}
    rivals = [i for i, t in enumerate(tools) if t.name not in called and not returns_handle(t, tools)]
    if not request.strip() or not rivals or not example.reasoning_path:
        return Match(margin=-math.inf)
    from synthrun.scoring.tool_gates import answered_steps

    views = [scores(request, tools, model, lexical_weight)]
    if task_words:
        views.append(scores(task_text(example), tools, model, lexical_weight))
    index = {t.name: i for i, t in enumerate(tools)}
    worst = Match(margin=-math.inf)
    for n in answered_steps(example) or [len(example.reasoning_path)]:
        chosen = example.reasoning_path[n - 1].tool
        if chosen not in index:
            continue
        c = index[chosen]
        for r in rivals:
            margin = min(view[r] - view[c] for view in views)
            if margin > worst.margin:
                worst = Match(margin=margin, step=n, chosen=chosen, better=tools[r].name)
    return worst
