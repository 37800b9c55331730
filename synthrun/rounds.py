"""Row targets: ``target_rows: N`` runs a declared span of stages in rounds until N rows pass.

A recipe declares the span (``rounds: {from: generate, to: curate, max_rounds: 6}``); with
``target_rows`` set, the runner feeds the ``from`` stage a slice of the records the stage before it
made (chunks not used by an earlier round), runs every stage of the span on it, and counts the
rows the ``to`` stage kept. The first round takes ``target_rows`` inputs (one kept row per input
assumed); each later round sizes itself from the yield so far (rows kept per input used, plus
10%). Rounds stop when N rows passed (the first N, in round order, go on: exactly N), when the
inputs are used up, after ``max_rounds``, or when the budget ends (``budget_exhausted``).

Each round writes ``NN_stage/rounds/RR/`` (data, summary, ``_SUCCESS``): the same command resumes
at the round and stage it stopped in, and answered LLM calls come from the cache. The span's
stage folders then hold all rounds' records (the ``to`` stage: the N kept). ``metrics.json``
gets ``rounds``: per-round inputs, rows made and kept, yield and cost, and the cost per kept row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthrun.stage import StageError

log = logging.getLogger("synthrun")
DEFAULT_MAX_ROUNDS = 5
MARGIN = 1.1


@dataclass
class RoundsSpec:
    """A checked ``rounds`` span and target."""

    first: str
    last: str
    target: int
    max_rounds: int = DEFAULT_MAX_ROUNDS


def _whole(value: Any, where: str, minimum: int = 1) -> int:
    try:
        number = int(value)
        ok = not isinstance(value, bool) and float(value) == number and number >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise StageError(f"{where}={value!r}: must be a whole number >= {minimum}")
    return number


def parse_rounds(cfg: Any, names: list[str]) -> RoundsSpec | None:
    """The rounds span when ``target_rows`` is set (one-line :class:`StageError` when it is bad), else None."""
    target = cfg.get("target_rows")
    if target is None:
        return None
    target = _whole(target, "target_rows")
    span = cfg.get("rounds")
    if not span or not span.get("from") or not span.get("to"):
        raise StageError("target_rows needs the recipe to declare the stages it repeats, e.g. "
                         "`rounds: {from: generate, to: curate}` (the qa recipe does)")
    first, last = str(span.get("from")), str(span.get("to"))
    for key, name in (("from", first), ("to", last)):
        if name not in names:
            raise StageError(f"rounds.{key}={name!r}: no such stage in this recipe ({', '.join(names)})")
    if names.index(first) == 0:
        raise StageError(f"rounds.from={first!r}: the first stage has no input to take rounds from")
    if names.index(last) < names.index(first):
        raise StageError(f"rounds: '{last}' comes before '{first}' in the stages list")
    max_rounds = _whole(span.get("max_rounds", DEFAULT_MAX_ROUNDS), "rounds.max_rounds")
    return RoundsSpec(first, last, target, max_rounds)


def next_size(target: int, kept: int, used: int, remaining: int) -> int:
    """Inputs for the next round: the rows still needed over the yield so far (plus a margin)."""
    need = target - kept
    if need <= 0 or remaining <= 0:
        return 0
    if used == 0:
        size = need
    else:
        per_input = kept / used
        size = math.ceil(need / per_input * MARGIN) if per_input > 0 else used * 2
    return max(1, min(remaining, size))


def round_fingerprint(base: str, inputs: list[Any]) -> str:
    """A round's upstream fingerprint: the span's config chain and the ids of its inputs."""
    ids = [str(getattr(r, "id", "") or (r.get("id") if isinstance(r, dict) else "")) for r in inputs]
    return hashlib.sha256(json.dumps([base, ids]).encode()).hexdigest()[:20]


def read_rounds(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / "rounds.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
