"""The ``_target_`` allow-list: only stage classes are ever instantiated from a config.

A recipe names each stage's class with ``_target_`` in a top-level block. Before anything is
built, the whole composed config is walked: every top-level ``_target_`` must be the dotted path
of a :class:`~synthrun.stage.Stage` subclass under ``synthrun.stages.`` (or a prefix listed in
``allow_targets``), reached module by module with no attribute in between (so
``synthrun.io.os.makedirs`` is refused), and a ``_target_`` anywhere deeper (inside stage
parameters) is refused. Stages are then built by validating their plain parameters against the
class, so nothing nested can be instantiated. Command-line overrides that nest a ``_target_``
(or touch Hydra's own ``_target_`` nodes) are refused before Hydra runs.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any

from synthrun.errors import ConfigError

if TYPE_CHECKING:
    from synthrun.stage import Stage

STAGE_PACKAGE = "synthrun.stages."
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


class TargetError(ConfigError, ValueError):
    """A ``_target_`` that is not an allowed stage class (reported as one line)."""


def _prefixes(allow: list[str] | None) -> list[str]:
    extra = [str(p).strip() for p in allow or [] if str(p).strip().strip(".")]
    return [STAGE_PACKAGE, *(p if p.endswith(".") else p + "." for p in extra)]


def resolve_stage_class(target: Any, allow: list[str] | None = None, where: str = "_target_") -> type[Stage]:
    """The Stage subclass ``target`` names, importing module by module; :class:`TargetError` otherwise."""
    from synthrun.stage import Stage

    prefixes = _prefixes(allow)
    if not isinstance(target, str) or not _DOTTED.fullmatch(target):
        raise TargetError(f"{where}: _target_ {target!r} is not a dotted class path")
    if not any(target.startswith(p) for p in prefixes):
        raise TargetError(f"{where}: _target_ '{target}' is not allowed (only stage classes under "
                          f"{', '.join(prefixes)}); add its module prefix to `allow_targets` to permit it")
    parts = target.split(".")
    module = None
    for i in range(1, len(parts)):
        name = ".".join(parts[:i])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise TargetError(f"{where}: _target_ '{target}': importing {name} failed: {exc}") from None
            raise TargetError(f"{where}: _target_ '{target}' is not allowed: '{name}' is not a module "
                              f"(a stage is named by its module path and class)") from None
        except Exception as exc:  # noqa: BLE001 - a broken user module: one line, no traceback
            raise TargetError(f"{where}: _target_ '{target}': importing {name} failed: "
                              f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    modname, attr = ".".join(parts[:-1]), parts[-1]
    obj = getattr(module, attr, None)
    if obj is None:
        raise TargetError(f"{where}: _target_ '{target}': module {modname} has no class {attr}")
    package = modname if hasattr(module, "__path__") else modname.rpartition(".")[0]
    defined_in = getattr(obj, "__module__", "") or ""
    if not (isinstance(obj, type) and issubclass(obj, Stage) and obj is not Stage):
        raise TargetError(f"{where}: _target_ '{target}' is not allowed: it is not a synthrun Stage class")
    if not (defined_in == modname or defined_in.startswith(package + ".")) or not any(
            f"{defined_in}.".startswith(p) for p in prefixes):
        raise TargetError(f"{where}: _target_ '{target}' is not allowed: the class is defined in "
                          f"{defined_in}, outside {package}")
    return obj


def _nested_targets(value: Any, path: str) -> list[str]:
    """Paths of every ``_target_`` key inside ``value`` (a plain dict/list)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}"
            if key == "_target_":
                found.append(sub)
            found.extend(_nested_targets(item, sub))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_nested_targets(item, f"{path}[{i}]"))
    return found


def check_targets(cfg: Any, allow: list[str] | None = None) -> None:
    """Walk a whole composed config (without ``hydra``) and check every ``_target_`` in it.

    Instantiates nothing; imports only modules under an allowed prefix.
    """
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else dict(cfg)
    for name, block in plain.items():
        if name == "hydra":
            continue
        if name == "_target_":
            raise TargetError("_target_ at the top of the config is not allowed (only inside a stage block)")
        if not isinstance(block, (dict, list)):
            continue
        nested = _nested_targets(block, str(name))
        if isinstance(block, dict) and "_target_" in block:
            nested.remove(f"{name}._target_")
            target = cfg[name].get("_target_") if isinstance(cfg, DictConfig) else block["_target_"]
            resolve_stage_class(target, allow, where=f"stage '{name}'")
        if nested:
            raise TargetError(f"{nested[0]}: a nested _target_ is not allowed (only a stage block names "
                              f"a class; stage parameters are plain values)")


def _override_targets(value: Any, path: str) -> list[str]:
    from hydra.core.override_parser.types import ChoiceSweep

    if isinstance(value, ChoiceSweep):
        return [p for item in value.list for p in _override_targets(item, path)]
    return _nested_targets(value, path)


def check_override_targets(overrides: list[str]) -> None:
    """Refuse, before Hydra runs, overrides that put a ``_target_`` below a stage block or under ``hydra``.

    ``STAGE._target_=...`` and ``+STAGE={_target_: ...}`` are left to :func:`check_targets`, which sees
    the composed config and ``allow_targets``.
    """
    for item in overrides:
        if item.startswith("-") or "=" not in item:
            continue
        key = item.split("=", 1)[0].lstrip("+~")
        if "_target_" not in item:
            continue
        try:
            from hydra.core.override_parser.overrides_parser import OverridesParser

            (override,) = OverridesParser.create().parse_overrides([item])
            key = override.get_key_element().lstrip("+~")
            paths = [key] if key.split(".")[-1] == "_target_" else []
            paths += _override_targets(override._value, key)
        except Exception:  # noqa: BLE001 - unparsable: Hydra will refuse it; judge by the raw text
            paths = [f"{key}._target_"]
        for path in paths:
            parts = path.split(".")
            if parts[0] == "hydra" or len(parts) != 2 or "[" in path:
                raise TargetError(f"refusing override '{key}': {path} is not allowed (a _target_ may only "
                                  f"name a stage class in a top-level stage block); nothing was written")
