"""The shipped stages, importable by class name: ``synthrun.stages.Judge`` (what recipes name).

A name is looked up on first use: the module of this package that defines ``class <Name>(`` is
imported and its class returned, so adding a stage is adding its module (no table to update), and
importing the package imports no stage.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).parent


@cache
def _module_defining(name: str) -> str | None:
    pattern = re.compile(rf"^class {re.escape(name)}\(", re.M)
    for path in sorted(_HERE.glob("*.py")):
        if path.stem != "__init__" and pattern.search(path.read_text(encoding="utf-8")):
            return f"{__name__}.{path.stem}"
    return None


def __getattr__(name: str) -> Any:
    if not name[:1].isupper():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _module_defining(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
