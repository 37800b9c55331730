"""Complexity and quality scores (0-10) from an LLM judge, through the shared client."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from synthrun.llm.types import LLMRequest


class MultiScoreJudgement(BaseModel):
    """What the judge answers (prompts/multi_score.yaml)."""

    complexity: int = Field(ge=0, le=10)
    quality: int = Field(ge=0, le=10)


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars] + " [...]"


def llm_scores(pairs: list[tuple[str, str]], ctx: Any, prompt: str = "multi_score", max_chars: int = 3000,
               params: dict[str, Any] | None = None) -> list[tuple[float, float, str] | str]:
    """Ask the judge for (complexity, quality) of each (instruction, response) pair.

    Returns, per pair, ``(complexity, quality, model)`` or the client's error code.
    """
    requests = [
        LLMRequest(
            messages=ctx.prompts.render(prompt, instruction=_clip(ins, max_chars), response=_clip(res, max_chars)),
            schema=MultiScoreJudgement,
            params={"temperature": 0.0, "max_tokens": 48, **(params or {})},
            tag=i,
        )
        for i, (ins, res) in enumerate(pairs)
    ]
    out: list[tuple[float, float, str] | str] = []
    for result in ctx.llm.map(requests, desc="scoring"):
        if not result.ok or result.parsed is None:
            out.append(result.error or "no_answer")
            continue
        parsed: Any = result.parsed
        out.append((float(parsed.complexity), float(parsed.quality), result.model))
    return out
