"""Errors shown to the user as one line (no traceback)."""

from __future__ import annotations

from synthrun.prompts import PromptError
from synthrun.runner import RecipeError
from synthrun.secrets import SecretOverrideError
from synthrun.stage import StageError


class ComposeError(Exception):
    """A recipe name or override that Hydra cannot compose."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    RecipeError, StageError, PromptError, SecretOverrideError, ComposeError, FileNotFoundError,
)
