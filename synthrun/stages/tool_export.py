"""Export tool-use examples as training files (TRL, OpenAI, ShareGPT, reasoning-path JSON)."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from pydantic import Field, field_validator

from synthrun.context import StageContext
from synthrun.io import write_jsonl
from synthrun.records import Record, ToolExample
from synthrun.stage import Stage
from synthrun.stages.dataset_files import declare


class ExportTools(Stage):
    """Write ``<stage_dir>/dataset/train.<format>.jsonl`` (and ``validation.<format>.jsonl``).

    Every exported example passes the format check again here (``require_format_ok``), and
    with ``require_execution`` every call must have run successfully.

    Attributes:
        formats: Any of trl | openai | sharegpt | reasoning (the tool-use format modules of
            :mod:`synthrun.formats`).
        system_prompt: Optional system message.
        thoughts: Put each step's thought in the assistant turn that makes the call.
        require_format_ok: Drop examples failing the format/AST check.
        require_execution: Drop examples with calls that failed or never ran.
        require_answer: Drop examples without a final answer.
        val_fraction: Share of examples (chosen by id hash) written to ``validation.*``.
        metadata: Add a ``metadata`` object (id, ``simulated``, ``simulated_steps``) to every
            row of every format; turn off for uploads that reject extra keys.
    """

    input_type: ClassVar[type[Record]] = ToolExample
    output_type: ClassVar[type[Record]] = ToolExample
    needs_all_records: ClassVar[bool] = True

    formats: list[str] = Field(default_factory=lambda: ["trl", "openai", "sharegpt", "reasoning"], min_length=1)
    system_prompt: str | None = None
    thoughts: bool = True
    require_format_ok: bool = True
    require_execution: bool = True
    require_answer: bool = True
    val_fraction: float = Field(default=0.0, ge=0, lt=1)
    metadata: bool = True

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str]) -> list[str]:
        from synthrun.formats import names

        unknown = [v for v in value if v not in names("tool")]
        if unknown:
            raise ValueError(f"unknown tool export format {unknown[0]!r}; use any of {', '.join(names('tool'))}")
        return value

    def run(self, records: list[ToolExample], ctx: StageContext) -> list[ToolExample]:
        from synthrun.formats import WriteOptions, get
        from synthrun.tools.replay import format_issues

        kept: list[ToolExample] = []
        for ex in records:
            if not ex.reasoning_path:
                ctx.fail("no_steps")
            elif self.require_format_ok and format_issues(ex):
                ctx.fail("format_check_failed")
            elif self.require_execution and not all(s.ok for s in ex.reasoning_path):
                ctx.fail("not_executed_ok")
            elif self.require_answer and not ex.final_answer.strip():
                ctx.fail("no_final_answer")
            else:
                kept.append(ex)
        train, val = [], []
        for ex in kept:
            bucket = int(hashlib.sha256(ex.id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            (val if bucket < self.val_fraction else train).append(ex)
        files = {}
        opts = WriteOptions(system_prompt=self.system_prompt, thoughts=self.thoughts, metadata=self.metadata,
                            tool_turns=True)
        for fmt in dict.fromkeys(self.formats):
            writer = get(fmt, "tool")
            for split, rows in (("train", train), ("validation", val)):
                if split == "validation" and not self.val_fraction:
                    continue
                path = ctx.stage_dir / "dataset" / f"{split}.{fmt}.jsonl"
                write_jsonl(path, [writer.write(ex, opts) for ex in rows])
                files[f"{split}.{fmt}"] = str(path)
        ctx.summary.update({"in": len(records), "exported": len(kept), "train": len(train),
                            "validation": len(val), "files": files,
                            "real_steps": sum(1 for ex in kept for s in ex.reasoning_path if not s.simulated),
                            "simulated_steps": sum(1 for ex in kept for s in ex.reasoning_path if s.simulated)})
        declare(ctx.summary, files)
        return kept
