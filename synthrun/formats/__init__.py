"""Training formats: one module per format in this package, each writing AND reading back its rows.

A format module defines::

    NAME = "chatml"                 # what recipes write: export.format=chatml
    KINDS = frozenset({"qa"})       # "qa": the ``export`` stage; "tool": ``tool_export``
    PARSE_ORDER = 20                # read-back tries formats in this order (lowest first)

    def write(record, opts: WriteOptions) -> dict: ...     # one record -> one JSON-able row
    def parse(row: dict) -> ReadBack | None: ...           # one row -> question/answer/reasoning

Adding a format is adding one module here: :func:`registry` finds it, ``export`` / ``tool_export``
accept its name, and ``compare`` reads its files back. Modules whose name starts with ``_`` hold
shared parts, not formats.

Question/answer formats: ``chatml``, ``alpaca``, ``sharegpt``, ``jsonl``, ``alpaca_text``; tool-use
formats (real tool-call turns): ``trl``, ``openai``, ``sharegpt``, ``reasoning``. Chain-of-thought
examples put their reasoning into the assistant turn as ``cot_style`` says: ``steps`` ("Step 1: ..."
lines, then "Answer: ..."), ``think_tags`` (``<think>...</think>`` then the answer) or ``none``.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from types import ModuleType
from typing import Any, Literal

from synthrun.formats._common import (
    CotStyle,
    FormatError,
    ReadBack,
    WriteOptions,
    prompt_and_response,
    render_reasoning,
    specialize,
    split_reasoning,
)
from synthrun.records import Record

__all__ = ["FORMATS", "CotStyle", "Format", "FormatError", "ReadBack", "WriteOptions", "convert", "get", "names",
           "prompt_and_response", "read_back", "registry", "render_reasoning", "specialize", "split_reasoning"]

#: A format name (checked against :func:`registry` where it is used).
Format = str
Kind = Literal["qa", "tool"]


@lru_cache(maxsize=1)
def registry() -> dict[str, ModuleType]:
    """Every format module of this package by its ``NAME``."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.NAME] = module
    return found


def names(kind: Kind) -> tuple[str, ...]:
    """Names of the formats that write records of ``kind`` (in a stable order)."""
    return tuple(sorted(n for n, m in registry().items() if kind in m.KINDS))


def get(name: str, kind: Kind | None = None) -> ModuleType:
    """The format module called ``name`` (that writes ``kind`` records, when given).

    Raises:
        FormatError: No such format (the message lists the known ones).
    """
    known = names(kind) if kind else tuple(sorted(registry()))
    if name not in known:
        raise FormatError(f"unknown export format {name!r}; use one of {', '.join(known)}")
    return registry()[name]


def convert(record: Record, fmt: str, *, system_prompt: str | None = None, cot_style: CotStyle = "steps",
            include_provenance: bool = False) -> dict[str, Any]:
    """Convert one question/answer record to one row of the training format ``fmt``.

    Raises:
        FormatError: Unknown format, or a record without a question/answer shape.
    """
    opts = WriteOptions(system_prompt=system_prompt, cot_style=cot_style, include_provenance=include_provenance)
    row: dict[str, Any] = get(fmt, "qa").write(specialize(record), opts)
    return row


def read_back(row: dict[str, Any]) -> tuple[str, ReadBack] | None:
    """``(format name, what the row teaches)`` for a row of any format, or None for an unknown shape.

    The reasoning a question/answer format rendered into the answer (``Step 1: ...``, ``<think>``) is
    split off again.
    """
    for module in sorted(registry().values(), key=lambda m: (m.PARSE_ORDER, m.NAME)):
        got = module.parse(row)
        if got is not None:
            if not got.split:
                got.reasoning, got.answer = split_reasoning(got.answer.strip())
                got.split = True
            return module.NAME, got
    return None


def __getattr__(name: str) -> Any:
    if name == "FORMATS":  # the question/answer formats, for messages and docs
        return names("qa")
    raise AttributeError(name)
