"""The format/AST check (APIGen's first layer): is each call well formed against the tool's schema?

Per call: the tool exists, the arguments are an object, required arguments are present, no
unknown argument, every value has the declared type (JSON Schema, via ``jsonschema``), enum
values are allowed, and ``$stepN`` references point to an earlier step whose result type
fits the parameter. Handle parameters must be fed by a reference (a model cannot invent a handle).
Once a step has run, the values its references resolved to (``resolved_args``) are checked
against the parameter's JSON Schema too, so an untyped result passed into a typed parameter
is caught.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from synthrun.tools.executors.base import parse_ref, ref_type
from synthrun.tools.spec import ParamSpec, ToolSpec, TypeSystem

#: ``add(code, message, arg)``: record one issue of the call being checked.
_Add = Callable[[str, str, str | None], None]

ISSUE_CODES = ("unknown_tool", "args_not_object", "missing_required", "unknown_argument", "wrong_type",
               "bad_enum", "bad_reference", "invalid_value")


@dataclass
class CheckIssue:
    """One problem with one call."""

    code: str
    message: str
    step: int | None = None
    tool: str | None = None
    arg: str | None = None

    def __str__(self) -> str:
        where = f"step {self.step} " if self.step is not None else ""
        return f"{where}{self.tool or '?'}: {self.code}: {self.message}"


@lru_cache(maxsize=1024)
def _validator(schema_json: str):
    import json

    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_json))


def _schema_errors(param: ParamSpec, value: Any) -> list[tuple[str, str]]:
    import json

    schema = dict(param.json_schema or {})
    if param.enum and "enum" not in schema:
        schema["enum"] = param.enum
    if not schema:
        return []
    try:
        validator = _validator(json.dumps(schema, sort_keys=True, default=str))
        errors = list(validator.iter_errors(value))
    except Exception:  # noqa: BLE001 - an unresolvable schema ($ref to nowhere) is not the call's fault
        return []
    out = []
    for err in errors:
        code = {"type": "wrong_type", "enum": "bad_enum", "const": "bad_enum"}.get(str(err.validator), "invalid_value")
        if err.validator == "anyOf" and any(s.validator == "type" for s in err.context or []):
            code = "wrong_type"
        where = "".join(f"[{p}]" for p in err.absolute_path)
        out.append((code, f"{param.name}{where}: {err.message}"))
    return out


def check_call(tool: ToolSpec | None, args: Any, *, name: str | None = None, step: int | None = None,
               ref_types: dict[int, str] | None = None, ts: TypeSystem | None = None,
               strict_handles: bool = True, resolved: dict[str, Any] | None = None) -> list[CheckIssue]:
    """Check one call; return its problems (empty when it is well formed).

    Args:
        tool: The tool's spec, or None when no tool of that name is offered.
        args: The call's arguments.
        name: The called name (for messages when ``tool`` is None).
        step: 1-based position in the reasoning path (references must point before it).
        ref_types: Return type of each earlier step, by step number.
        ts: Type system for semantic types (defaults to the tool's own).
        strict_handles: Require a reference for handle parameters.
        resolved: The arguments as sent after resolving references (an executed step's
            ``resolved_args``); referenced values are checked against the schema.
    """
    label = tool.name if tool else name
    issues: list[CheckIssue] = []

    def add(code: str, message: str, arg: str | None = None) -> None:
        issues.append(CheckIssue(code=code, message=message, step=step, tool=label, arg=arg))

    if tool is None:
        add("unknown_tool", f"no tool named {name!r} is offered")
        return issues
    if not isinstance(args, dict):
        add("args_not_object", f"arguments must be an object, got {type(args).__name__}")
        return issues
    ts = ts or tool.type_system()
    known = {p.name: p for p in tool.parameters}
    for p in tool.parameters:
        if p.required and args.get(p.name) is None:
            add("missing_required", f"required argument {p.name!r} is missing", p.name)
    for key, value in args.items():
        param = known.get(key)
        if param is None:
            add("unknown_argument", f"{key!r} is not a parameter of {tool.name} (parameters: {', '.join(known) or 'none'})", key)
        elif value is None:
            continue
        elif parse_ref(value) is not None:
            _check_ref(param, key, value, step, ref_types or {}, ts, resolved, issues, add)
        else:
            _check_literal(param, key, value, ts, strict_handles, resolved, add)
    return issues


def _check_ref(param: ParamSpec, key: str, value: Any, step: int | None, ref_types: dict[int, str],
               ts: TypeSystem, resolved: dict[str, Any] | None, issues: list[CheckIssue], add: _Add) -> None:
    """A ``$stepN`` argument: it points back, its type fits, and the value it resolved to is valid."""
    n, accessors = parse_ref(value)  # type: ignore[misc]
    if step is not None and not 1 <= n < step:
        add("bad_reference", f"{key}={value!r} must refer to an earlier step (this is step {step})", key)
    elif n in ref_types:
        have = ref_type(ref_types[n], accessors, ts)
        if ts.accepts(param.type, have) == 0.0:
            add("wrong_type", f"{key}={value!r} is a {have}, the parameter wants {param.type}", key)
    elif step is not None:
        add("bad_reference", f"{key}={value!r} refers to step {n}, which is not a valid call", key)
    if resolved is not None and key in resolved and not any(i.arg == key for i in issues):
        for code, message in _schema_errors(param, resolved[key]):
            add(code, f"{value} resolved to {_short(resolved[key])}: {message}", key)


def _check_literal(param: ParamSpec, key: str, value: Any, ts: TypeSystem, strict_handles: bool,
                   resolved: dict[str, Any] | None, add: _Add) -> None:
    """A literal argument: not a typed-in handle, and valid against the parameter's schema."""
    if strict_handles and ts.is_handle(param.type):
        add("wrong_type", f"{key} wants a {param.type} returned by an earlier call (a $stepN reference), "
                          f"got the literal {value!r}", key)
        return
    if isinstance(value, list) and any(parse_ref(v) for v in value):
        if resolved is not None and key in resolved:
            value = resolved[key]
        else:
            value = [v for v in value if parse_ref(v) is None]
            if not value:
                return
    for code, message in _schema_errors(param, value):
        add(code, message, key)


def _short(value: Any, limit: int = 60) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_path(steps: list[Any], tools: list[ToolSpec], strict_handles: bool = True) -> list[CheckIssue]:
    """Check every call of a reasoning path (``ToolStep`` objects or dicts with ``tool`` and ``args``)."""
    by_name = {t.name: t for t in tools}
    types: dict = {}
    for t in tools:
        types.update(t.types)
    ts = TypeSystem(types)
    ref_types: dict[int, str] = {}
    issues: list[CheckIssue] = []
    for i, step in enumerate(steps, 1):
        name = step.get("tool") if isinstance(step, dict) else step.tool
        args = step.get("args") if isinstance(step, dict) else step.args
        resolved = step.get("resolved_args") if isinstance(step, dict) else getattr(step, "resolved_args", None)
        tool = by_name.get(name)
        found = check_call(tool, args, name=name, step=i, ref_types=ref_types, ts=ts, strict_handles=strict_handles,
                           resolved=resolved if isinstance(resolved, dict) else None)
        issues.extend(found)
        if tool is not None:
            ref_types[i] = tool.returns.type
    return issues
