"""How a stage that writes training files declares them, and how a later stage (``publish``) finds them.

Every export stage (``export``, ``tool_export``, ``combine`` ...) calls :func:`declare` with the files it
wrote; that puts ``{"dataset_files": {name: path}}`` into its ``summary.json``. :func:`find_declared`
returns the files of the last stage before a given one that declared any.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The summary key of the declared files: ``{name: path}``.
KEY = "dataset_files"


def declare(summary: dict[str, Any], files: Mapping[str, str | Path]) -> None:
    """Record ``files`` (``{name: path}``) as the training files this stage wrote."""
    summary[KEY] = {name: str(path) for name, path in files.items()}


def find_declared(run_dir: Path, before: Path) -> list[Path]:
    """The files declared by the last stage of ``run_dir`` that ran before the stage folder ``before``.

    A run folder written before stages declared their files names one file as ``dataset_file``;
    that is read too.
    """
    found: list[Path] = []
    for summary_path in sorted(run_dir.glob("*/summary.json")):
        if summary_path.parent.name >= before.name:
            continue
        try:
            details = json.loads(summary_path.read_text(encoding="utf-8")).get("details") or {}
        except (OSError, json.JSONDecodeError):
            continue
        files = details.get(KEY)
        if isinstance(files, dict) and files:
            found = [Path(p) for p in files.values()]
        elif details.get("dataset_file"):
            found = [Path(details["dataset_file"])]
    return found
