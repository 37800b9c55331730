"""Rich progress bars shared by stages and the LLM client."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def make_progress(enabled: bool = True):
    """Return a started-on-enter ``rich.progress.Progress`` (disabled when not wanted)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        # On a terminal the bars stay as a record; in logs/CI (no terminal) they are not drawn.
        disable=not enabled or not sys.stderr.isatty(),
    )


def stderr_console() -> Any:
    """A rich Console on stderr; wide when stderr is no terminal (logs, CI), so tables are not squeezed."""
    from rich.console import Console

    console = Console(stderr=True)
    return console if console.is_terminal else Console(stderr=True, width=160)


def track(items: Iterable[T], total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with make_progress(enabled) as progress:
        task = progress.add_task(desc, total=total)
        for item in items:
            yield item
            progress.advance(task)
