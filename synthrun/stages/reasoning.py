"""Chain-of-thought answers: the reasoning-steps schema and the step range shared by the CoT stages."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, create_model, model_validator

from synthrun.stages.llm_stage import LLMStage

_PLACEHOLDER = re.compile(r"^(?:step\s*\d*|\.+|<[^>]*>|first step|second step|next step|reasoning( step)?)[.:]?$",
                          re.I)


def _real_step(step: str) -> str:
    if _PLACEHOLDER.match(step):
        raise ValueError(f"{step!r} is a placeholder, not a reasoning step; write the step out")
    return step


def _distinct(steps: list[str]) -> list[str]:
    if len({s.casefold() for s in steps}) < len(steps):
        raise ValueError("reasoning steps repeat; each step must say something new")
    return steps


Step = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=400), AfterValidator(_real_step)]
Steps = Annotated[list[Step], AfterValidator(_distinct)]


@lru_cache(maxsize=32)
def reasoning_schema(min_steps: int, max_steps: int, with_question: bool = True) -> type[BaseModel]:
    """The JSON schema asked of the model: ``reasoning`` holds ``min_steps``..``max_steps`` steps.

    With ``with_question`` the model also writes ``question`` and ``answer`` (generation);
    without, only the steps (enhancement of an existing pair). Steps must be distinct and
    not template placeholders ("step 1", "...") that small models copy from the prompt.
    """
    steps = (Steps, Field(min_length=min_steps, max_length=max_steps))
    if not with_question:
        return create_model(f"ReasoningOut{min_steps}to{max_steps}", reasoning=steps)
    return create_model(
        f"CoTOut{min_steps}to{max_steps}",
        question=(str, Field(min_length=8, max_length=400)),
        reasoning=steps,
        answer=(str, Field(min_length=1, max_length=1000)),
    )


class StepRange(LLMStage):
    """An LLM stage whose answers hold ``min_steps``..``max_steps`` reasoning steps (the CoT stages)."""

    min_steps: int = Field(default=2, ge=1, le=10)
    max_steps: int = Field(default=5, ge=1, le=10)

    @model_validator(mode="after")
    def _step_range(self) -> StepRange:
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) must not exceed max_steps ({self.max_steps})")
        return self
