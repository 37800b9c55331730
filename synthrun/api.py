"""Run recipes from Python (tests, notebooks) exactly as the command line does."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from synthrun.errors import ComposeError


@contextmanager
def _env(name: str, value: str | None):
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if value is not None:
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def run_recipe(recipe: str, overrides: list[str] | tuple[str, ...] = (), output_root: str | Path | None = None,
               multirun: bool = False) -> Path:
    """Run ``synthrun [-m] +recipe=RECIPE *overrides`` in this process.

    Args:
        recipe: Recipe name (a file in a recipe folder).
        overrides: Hydra overrides, as on the command line.
        output_root: Folder for run outputs (default: ``$SYNTHRUN_OUTPUTS`` or ``outputs``).
        multirun: Sweep over comma-separated values (``-m``).

    Returns:
        The run folder (for a multirun: the sweep folder of the last run).

    Raises:
        RuntimeError: The run failed (the message says why).
    """
    from synthrun import cli

    args = (["-m"] if multirun else []) + [f"+recipe={recipe}", *overrides]
    cli._LAST_RUN.clear()
    with _env("SYNTHRUN_OUTPUTS", str(output_root) if output_root is not None else None):
        code = cli.main(args)
    if code != 0 or "dir" not in cli._LAST_RUN:
        raise RuntimeError(f"synthrun {' '.join(args)} failed with exit code {code}")
    run_dir = cli._LAST_RUN["dir"]
    return run_dir.parent if multirun else run_dir


__all__ = ["run_recipe", "ComposeError"]
