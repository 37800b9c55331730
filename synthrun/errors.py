"""Errors shown to the user as one line (no traceback)."""

from __future__ import annotations

from synthrun.allowlist import TargetError
from synthrun.io import StorageError
from synthrun.prompts import PromptError
from synthrun.runner import RecipeError
from synthrun.runstate import RunFolderBusy
from synthrun.secrets import SecretOverrideError
from synthrun.stage import StageError


class ComposeError(Exception):
    """A recipe name or override that Hydra cannot compose."""


# Lines of Hydra/OmegaConf messages that say nothing about the user's mistake.
_NOISE = ("Set the environment variable HYDRA_FULL_ERROR", "full_key:", "object_type=", "reference_type=")


def compose_error_message(exc: BaseException) -> str:
    """One line from a multi-line Hydra/OmegaConf composition error (option lists folded)."""
    parts: list[str] = []
    options: list[str] | None = None
    for raw in str(exc).splitlines():
        line = raw.strip()
        if not line:
            continue
        if options is not None and raw.startswith("\t"):
            options.append(line)
            continue
        if options is not None:
            parts[-1] += " " + ", ".join(options)
            options = None
        if line.startswith("Config search path"):  # what follows lists folders, not the mistake
            break
        if line.startswith(_NOISE):
            continue
        if line.startswith("Available options in"):
            parts.append(line)
            options = []
            continue
        parts.append(line)
    if options:
        parts[-1] += " " + ", ".join(options)
    return "; ".join(p.rstrip(".:") for p in parts) or type(exc).__name__


USER_ERRORS: tuple[type[BaseException], ...] = (
    RecipeError, StageError, PromptError, SecretOverrideError, TargetError, ComposeError, FileNotFoundError,
    StorageError, RunFolderBusy,
)
