"""Executor contract, the ``$stepN`` reference convention, and the per-example execution trace.

An argument may refer to an earlier result: ``"$step1"`` is the whole result of step 1 (a
handle result stands for its ``handle`` string), ``"$step2.shape"`` a field of it and
``"$step3[0]"`` an element; accessors chain (``"$step2.datasets[0]"``). A :class:`Trace`
resolves references to concrete values before calling the tool, so an executed step stores
both the symbolic ``args`` and the ``resolved_args`` a real client would have sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from synthrun.tools.spec import ToolSpec, TypeSystem, type_parts

REF_RE = re.compile(r"^\$step(\d+)((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)$")
_ACCESSOR = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


class ToolCallError(Exception):
    """A call that failed in the tool itself (bad path, closed handle ...): the step's error."""


def parse_ref(value: Any) -> tuple[int, list[str | int]] | None:
    """``(step, accessors)`` for a reference string like ``$step2.shape[0]``, else None."""
    if not isinstance(value, str):
        return None
    m = REF_RE.match(value.strip())
    if not m:
        return None
    accessors: list[str | int] = [a if a else int(i) for a, i in _ACCESSOR.findall(m.group(2))]
    return int(m.group(1)), accessors


def wire_value(result: Any) -> Any:
    """What a result stands for when passed on: a handle result passes its ``handle`` string."""
    if isinstance(result, dict) and isinstance(result.get("handle"), str):
        return result["handle"]
    return result


def ref_type(base_type: str, accessors: list[str | int], ts: TypeSystem) -> str:
    """The type a reference has after applying its accessors to a result of ``base_type``."""
    current = base_type
    for acc in accessors:
        parts = type_parts(current)
        nxt = []
        for part in parts:
            td = ts.get(part)
            if isinstance(acc, int):
                nxt.append(td.items if td and td.items else "any")
            else:
                nxt.append(td.properties.get(acc, "any") if td else "any")
        current = "|".join(dict.fromkeys(nxt))
    return current


class Session:
    """State of one example on one executor (open files, handles ...)."""

    executor: str = ""

    def call(self, tool: ToolSpec, args: dict[str, Any]) -> Any:
        """Run ``tool`` with concrete ``args``; return a JSON-able result or raise :class:`ToolCallError`."""
        raise NotImplementedError

    def hints(self, tool: ToolSpec, args: dict[str, Any], want: dict[str, Any] | None = None) -> dict[str, list[Any]]:
        """Plausible values per parameter, given the concrete ``args`` already bound (handles ...).

        ``want`` says what the next step needs from this one (``{"tool", "param", "type"}``).
        """
        return {}

    def result_type(self, tool: ToolSpec, result: Any) -> str:
        """The type the result really has (narrower than ``tool.returns.type`` when known)."""
        return tool.returns.type

    def close(self) -> None:
        pass


class Executor:
    """Runs some tools. Subclasses set ``name`` and implement :meth:`supports` and :meth:`open`."""

    name: ClassVar[str] = ""
    real: ClassVar[bool] = True

    def supports(self, tool: ToolSpec) -> bool:
        raise NotImplementedError

    def environment(self, rng, tools: list[ToolSpec]) -> dict[str, Any]:
        """Pick the world one example runs in (e.g. which HDF5 file); JSON-able."""
        return {}

    def describe(self, env: dict[str, Any]) -> str:
        """Text describing the environment for prompts."""
        return ""

    def open(self, env: dict[str, Any]) -> Session:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass
class StepOutcome:
    """What running one step produced."""

    ok: bool
    result: Any = None
    error: str | None = None
    executor: str | None = None
    resolved_args: dict[str, Any] = field(default_factory=dict)
    result_type: str = "any"


class ExecutionEngine:
    """Routes each tool to the first executor that supports it."""

    def __init__(self, executors: list[Executor]):
        if not executors:
            raise ValueError("at least one executor is needed")
        self.executors = executors

    def executor_for(self, tool: ToolSpec) -> Executor | None:
        return next((e for e in self.executors if e.supports(tool)), None)

    def environment(self, rng, tools: list[ToolSpec]) -> dict[str, Any]:
        env: dict[str, Any] = {}
        for ex in self.executors:
            mine = [t for t in tools if self.executor_for(t) is ex]
            if mine:
                env[ex.name] = ex.environment(rng, mine)
        return env

    def describe(self, env: dict[str, Any]) -> str:
        texts = [ex.describe(env.get(ex.name) or {}) for ex in self.executors if ex.name in env]
        return "\n".join(t for t in texts if t)

    def trace(self, env: dict[str, Any], tools: list[ToolSpec]) -> Trace:
        return Trace(self, env, tools)

    def close(self) -> None:
        for ex in self.executors:
            ex.close()


class Trace:
    """Executes one example's steps in order, passing real results forward."""

    def __init__(self, engine: ExecutionEngine, env: dict[str, Any], tools: list[ToolSpec]):
        self.engine = engine
        self.env = env
        self.tools = {t.name: t for t in tools}
        types: dict = {}
        for t in tools:
            types.update(t.types)
        self.ts = TypeSystem(types)
        self.sessions: dict[str, Session] = {}
        self.outcomes: list[StepOutcome] = []

    def _session(self, ex: Executor) -> Session:
        if ex.name not in self.sessions:
            self.sessions[ex.name] = ex.open(self.env.get(ex.name) or {})
        return self.sessions[ex.name]

    def resolve(self, value: Any, step: int) -> Any:
        """Replace references in ``value`` (a string, or strings inside a list) by earlier results."""
        if isinstance(value, list):
            return [self.resolve(v, step) for v in value]
        ref = parse_ref(value)
        if ref is None:
            return value
        n, accessors = ref
        if not 1 <= n < step:
            raise ToolCallError(f"reference {value!r} does not point to an earlier step (this is step {step})")
        outcome = self.outcomes[n - 1]
        if not outcome.ok:
            raise ToolCallError(f"reference {value!r} points to step {n}, which failed")
        current = outcome.result
        for acc in accessors:
            try:
                current = current[acc]
            except (KeyError, IndexError, TypeError):
                raise ToolCallError(f"reference {value!r}: step {n}'s result has no {acc!r}") from None
        return wire_value(current)

    def ref_type(self, value: Any) -> str | None:
        """The type of a reference (using the runtime type of the step it points to)."""
        ref = parse_ref(value)
        if ref is None or not 1 <= ref[0] <= len(self.outcomes):
            return None
        return ref_type(self.outcomes[ref[0] - 1].result_type, ref[1], self.ts)

    def run(self, tool_name: str, args: dict[str, Any]) -> StepOutcome:
        """Run the next step; a failure is recorded (never raised)."""
        step = len(self.outcomes) + 1
        tool = self.tools.get(tool_name)
        if tool is None:
            outcome = StepOutcome(ok=False, error=f"unknown tool {tool_name!r}")
        else:
            ex = self.engine.executor_for(tool)
            if ex is None:
                outcome = StepOutcome(ok=False, error=f"no executor supports tool {tool_name!r}")
            else:
                try:
                    resolved = {k: self.resolve(v, step) for k, v in (args or {}).items()}
                except ToolCallError as exc:
                    outcome = StepOutcome(ok=False, error=str(exc), executor=ex.name)
                else:
                    outcome = self._call(ex, tool, resolved)
        self.outcomes.append(outcome)
        return outcome

    def _call(self, ex: Executor, tool: ToolSpec, resolved: dict[str, Any]) -> StepOutcome:
        session = self._session(ex)
        try:
            result = session.call(tool, resolved)
        except ToolCallError as exc:
            return StepOutcome(ok=False, error=str(exc), executor=ex.name, resolved_args=resolved)
        except Exception as exc:  # a tool crashing is a failed step, not a failed run
            return StepOutcome(ok=False, error=f"{type(exc).__name__}: {exc}", executor=ex.name, resolved_args=resolved)
        return StepOutcome(ok=True, result=result, executor=ex.name, resolved_args=resolved,
                           result_type=session.result_type(tool, result))

    def hints(self, tool: ToolSpec, args: dict[str, Any], want: dict[str, Any] | None = None) -> dict[str, list[Any]]:
        """Value hints for ``tool``'s parameters from the executor that would run it."""
        ex = self.engine.executor_for(tool)
        if ex is None:
            return {}
        step = len(self.outcomes) + 1
        try:
            resolved = {k: self.resolve(v, step) for k, v in args.items()}
        except ToolCallError:
            return {}
        return self._session(ex).hints(tool, resolved, want)

    def close(self) -> None:
        for s in self.sessions.values():
            s.close()
        self.sessions.clear()
