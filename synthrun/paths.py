"""Where the project's data folders are, from a checkout or from an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder ``conf``, ``recipes`` or ``prompts``.

    A wheel carries them under ``synthrun/_data``; a checkout (editable install)
    has them beside the package.
    """
    packaged = _PKG / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PKG.parent / name


def conf_dir() -> Path:
    return data_dir("conf")


def recipes_dir() -> Path:
    return data_dir("recipes")


def prompts_dir() -> Path:
    return data_dir("prompts")
