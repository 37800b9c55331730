"""The one error family shown to the user as one line (no traceback); imports nothing of synthrun.

Every module may raise these, from the LLM client to the stages::

    SynthrunError
    ├── ConfigError        a recipe, override or setting that cannot work (nothing ran)
    │   ├── RecipeError    a recipe that cannot be built into stages
    │   └── ComposeError   a recipe name or override Hydra cannot compose
    ├── StageError         a problem with a stage's input or parameters (``synthrun.stage`` exports it)
    │   ├── ProviderError  the LLM provider config is unusable (no model, key not exported, ...)
    │   └── InputError     an input file or database that cannot be read as asked
    └── (defined next to their code) StorageError (io), RunFolderBusy (runstate),
        PromptError, TargetError, SecretOverrideError (config errors)

The command line catches :data:`USER_ERRORS` and prints ``synthrun: error: <message>``.
"""

from __future__ import annotations


class SynthrunError(Exception):
    """Base of every error reported to the user as one line."""


class ConfigError(SynthrunError):
    """A recipe, override or setting that cannot work; raised before anything runs."""


class RecipeError(ConfigError):
    """A recipe that cannot be composed into stages (reported as one line)."""


class ComposeError(ConfigError):
    """A recipe name or override that Hydra cannot compose."""


class StageError(SynthrunError):
    """A problem with a stage's input or parameters, reported as one line."""


class ProviderError(StageError):
    """An LLM provider config that cannot be used (unknown kind, no model, a key not exported ...)."""


class InputError(StageError):
    """An input file, folder or database that cannot be read as asked."""


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


USER_ERRORS: tuple[type[BaseException], ...] = (SynthrunError, FileNotFoundError)
