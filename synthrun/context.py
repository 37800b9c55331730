"""What a stage gets from the runner: the LLM client, prompts, progress and counters."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from synthrun.llm.types import LLMProtocol, LLMStats
from synthrun.prompts import PromptLibrary

T = TypeVar("T")


@dataclass
class StageContext:
    """Per-stage services.

    Attributes:
        name: The stage's key in the recipe (e.g. ``curate``).
        run_id: Id of the run, stored in every record's provenance.
        run_dir: The run's output folder.
        stage_dir: This stage's folder inside ``run_dir`` (stages may put side files here).
        provider: The provider config for this stage (run provider merged with the stage's ``llm``).
        cache_path: The LLM response cache file, or None to disable caching.
        prompts: The prompt library (``prompts/`` plus user folders).
        seed: Seed for any sampling the stage does itself.
        show_progress: Whether to draw progress bars.
    """

    name: str
    run_id: str
    run_dir: Path
    stage_dir: Path
    provider: dict[str, Any] = field(default_factory=dict)
    cache_path: Path | None = None
    prompts: PromptLibrary = field(default_factory=PromptLibrary)
    seed: int = 0
    show_progress: bool = True
    stats: LLMStats = field(default_factory=LLMStats)
    failures: dict[str, int] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    #: The stage's spending guard (synthrun.budget.BudgetGuard), or None for no caps.
    budget: Any = None
    #: A ready client to use instead of one built from ``provider`` (tests pass an in-memory fake).
    client: LLMProtocol | None = None

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"synthrun.stage.{self.name}")

    @cached_property
    def llm(self) -> LLMProtocol:
        """The shared LLM client, configured for this stage (imported on first use)."""
        if self.client is not None:
            return self.client
        from synthrun.llm.client import LLMClient

        return LLMClient(
            self.provider, cache_path=self.cache_path, stats=self.stats, show_progress=self.show_progress,
            budget=self.budget,
        )

    @property
    def model_name(self) -> str:
        return str(self.provider.get("model", ""))

    def fail(self, reason: str, n: int = 1) -> None:
        """Count ``n`` records dropped or failed for ``reason`` (shown in metrics.json)."""
        self.failures[reason] = self.failures.get(reason, 0) + n

    def progress(self, items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
        """Iterate ``items`` with a rich progress bar labelled with the stage name."""
        from synthrun.progress import track

        yield from track(items, total=total, desc=f"{self.name}: {desc}" if desc else self.name,
                         enabled=self.show_progress)
