"""The one stage contract: records in, records out.

A stage is a pydantic model: its fields are the parameters a recipe sets (so a
bad value fails with the field's name before anything runs), and two class
variables declare the record types it reads and writes::

    class Shout(Stage):
        input_type = QAPair
        output_type = QAPair
        suffix: str = "!"

        def run(self, records, ctx):
            return [r.model_copy(update={"answer": r.answer + self.suffix}) for r in records]

The runner validates the incoming records against ``input_type``, calls
``run`` once, writes what it returns, and marks the stage done. Stages never
write their own output files; they use ``ctx`` for the LLM, prompts, progress
and counters (see :class:`synthrun.context.StageContext`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from synthrun.errors import StageError
from synthrun.records import Record

__all__ = ["Stage", "StageError"]

if TYPE_CHECKING:
    from synthrun.context import StageContext


class Stage(BaseModel):
    """Base class of every stage.

    Attributes:
        enabled: When False the stage passes its input through untouched.
        llm: Per-stage overrides of the run's provider config (e.g. a stronger judge model).
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record
    #: True when the stage needs no input records (it produces them from elsewhere).
    source: ClassVar[bool] = False
    #: True when the stage must run even if it finished before with the same config (e.g. ingest,
    #: whose input files may have changed); downstream stages re-run only if its output changed.
    always_run: ClassVar[bool] = False
    #: True when the stage needs all its records in one call (dedup, selection, splits, reports ...);
    #: False: it works record by record and the runner may call it once per shard (synthrun/shards.py).
    needs_all_records: ClassVar[bool] = False

    enabled: bool = True
    llm: dict[str, Any] = Field(default_factory=dict)

    def prompt_names(self) -> list[str]:
        """Prompt files this stage will render, checked before anything runs.

        By convention these are the string fields named ``prompt``, ``prompt_file`` or
        ``*_prompt`` (``system_prompt`` is message text, not a file) and the values of a
        ``prompts`` mapping.
        """
        names: list[str] = []
        for field_name in type(self).model_fields:
            value = getattr(self, field_name)
            if field_name == "prompts" and isinstance(value, dict):
                names.extend(str(v) for v in value.values() if v)
            elif isinstance(value, str) and value and field_name != "system_prompt" and (
                    field_name in ("prompt", "prompt_file") or field_name.endswith("_prompt")):
                names.append(value)
        return names

    def run(self, records: list[Any], ctx: StageContext) -> list[Record]:
        """Transform ``records`` (already validated as ``input_type``) into output records."""
        raise NotImplementedError
