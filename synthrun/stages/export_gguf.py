"""Export the merged model as GGUF (f16, q8_0) plus an Ollama Modelfile; serve it back with provider=local."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from typing import ClassVar, Literal

from pydantic import Field

from synthrun.context import StageContext
from synthrun.io import atomic_write_text
from synthrun.records import Record
from synthrun.stage import Stage, StageError


class ExportGGUF(Stage):
    """Write ``<stage_dir>/model.<type>.gguf`` for every type and ``<stage_dir>/Modelfile``.

    The Modelfile points at the first type (``FROM ./model.f16.gguf``), with the chat template
    translated to Ollama's TEMPLATE, ``PARAMETER stop`` for the end-of-turn tokens and the template's
    default system message as SYSTEM. The ``ollama create`` command is printed, and run when
    ``ollama`` is on PATH (``ollama: auto``). Every file is written through a temp file, so a failed
    export leaves an earlier good one in place.

    Attributes:
        name: Model name for ``ollama create``.
        types: GGUF types to write: f16, q8_0, f32.
        system_prompt: SYSTEM line (null: the chat template's own default system message, if any).
        ollama: ``auto`` (run when found), ``never`` or ``always`` (fail when ollama is missing).
    """

    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    name: str = Field(default="synthrun-tuned", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    types: list[Literal["f16", "q8_0", "f32"]] = Field(default_factory=lambda: ["f16", "q8_0"], min_length=1)
    system_prompt: str | None = None
    ollama: Literal["auto", "never", "always"] = "auto"

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        from pathlib import Path

        from transformers import AutoTokenizer

        from synthrun.finetune.base import find_artifact, write_manifest
        from synthrun.finetune.gguf_export import write_gguf
        from synthrun.finetune.modelfile import render_modelfile

        _, manifest = find_artifact(ctx, "merged")
        folder = Path(manifest["merged"])
        if not (folder / "config.json").is_file():
            raise StageError(f"export: {folder}: the merged model is missing (re-run the merge stage)")
        exe = shutil.which("ollama")
        if self.ollama == "always" and not exe:
            raise StageError("export: ollama: always, but `ollama` is not on PATH")
        files = {}
        for qtype in dict.fromkeys(self.types):
            ctx.log.info("writing %s GGUF", qtype)
            files[qtype] = write_gguf(folder, ctx.stage_dir / f"model.{qtype}.gguf", qtype,
                                      manifest["base"].get("gguf"), self.name)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        first = next(iter(files))
        modelfile = ctx.stage_dir / "Modelfile"
        atomic_write_text(modelfile, render_modelfile(f"./model.{first}.gguf", tokenizer, self.system_prompt))
        command = f"ollama create {self.name} -f {shlex.quote(str(modelfile))}"
        ran = None
        if exe and self.ollama != "never":
            proc = subprocess.run([exe, "create", self.name, "-f", str(modelfile)], cwd=ctx.stage_dir,
                                  capture_output=True, text=True, check=False)
            ran = proc.returncode
            if proc.returncode:
                raise StageError(f"export: `{command}` failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
        gguf = files[first]["path"]
        serve = f"provider=local provider.model=local/{gguf}"
        write_manifest(ctx.stage_dir, gguf={k: v["path"] for k, v in files.items()}, modelfile=str(modelfile))
        ctx.summary.update({"gguf": files, "modelfile": str(modelfile), "ollama_command": command,
                            "ollama_ran": ran, "serve_with": serve})
        print(f"GGUF: {gguf}\nOllama: {command}" + ("  (done)" if ran == 0 else "")
              + f"\nUse it in synthrun: synthrun +recipe=... {serve}", file=sys.stderr)
        return records
