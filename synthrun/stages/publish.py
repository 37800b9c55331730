"""Final stage: push the exported dataset and a generated dataset card to the Hugging Face Hub."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from synthrun.context import StageContext
from synthrun.dataset_card import read_run_info, render_card
from synthrun.io import atomic_write_text
from synthrun.records import Record
from synthrun.stage import Stage, StageError
from synthrun.stages.dataset_files import find_declared


class Publish(Stage):
    """Upload the dataset file(s) and a dataset card to a Hub dataset repository.

    The token is read from the environment variable ``token_env`` when the stage runs and
    is only handed to ``huggingface_hub``; it is never written to the card, logs, config or
    outputs. Records pass through unchanged. The card is also saved as ``README.md`` in
    the stage folder.

    Attributes:
        repo_id: Target dataset repository, ``namespace/name``.
        private: Create the repository as private (when it does not exist yet).
        token_env: Environment variable holding a Hub token with write access.
        files: Files to upload (relative to the run folder, or absolute); by default the
            files the last export stage before this one declared (see :mod:`synthrun.stages.dataset_files`).
        path_in_repo: Folder of the data files inside the repository.
        endpoint: Hub URL; default ``$HF_ENDPOINT`` or https://huggingface.co.
        pretty_name: Name shown on the card (default: the repository name).
        license: License id for the card metadata (e.g. ``cc-by-4.0``).
        language: Language codes for the card metadata.
        task_categories: Hub task categories for the card metadata.
        commit_message: Message of the upload commit.
        dry_run: Write the card but upload nothing (no token needed).
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    repo_id: str | None = None
    private: bool = True
    token_env: str = "HF_TOKEN"
    files: list[str] | None = None
    path_in_repo: str = "data"
    endpoint: str | None = None
    pretty_name: str | None = None
    license: str | None = None
    language: list[str] = Field(default_factory=lambda: ["en"])
    task_categories: list[str] = Field(default_factory=lambda: ["question-answering", "text-generation"])
    commit_message: str = "Upload synthetic dataset generated with synthrun"
    dry_run: bool = False

    @field_validator("files", "language", "task_categories", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, value: str | None) -> str | None:
        if value is not None and (value.count("/") != 1 or not all(value.split("/"))):
            raise ValueError(f"repo_id must look like 'namespace/name', got {value!r}")
        return value

    def _data_files(self, ctx: StageContext) -> dict[str, Path]:
        if self.files:
            paths = []
            for name in self.files:
                path = Path(name)
                if not path.is_absolute() and not path.exists():
                    path = ctx.run_dir / name
                paths.append(path)
        else:
            paths = find_declared(ctx.run_dir, ctx.stage_dir)
            if not paths:
                raise StageError("publish: no dataset file to upload; put an export stage before publish "
                                 "or set publish.files=[path/to/train.jsonl]")
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise StageError(f"publish: file not found: {', '.join(missing)}")
        folder = self.path_in_repo.strip("/")
        return {f"{folder}/{p.name}" if folder else p.name: p for p in paths}

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        from synthrun.formats import specialize

        if not self.repo_id:
            raise StageError("publish: set publish.repo_id=namespace/name (the Hub dataset repository)")
        records = [specialize(r) for r in records]
        data_files = self._data_files(ctx)
        info = read_run_info(ctx.run_dir, run_id=ctx.run_id, exclude=ctx.stage_dir)
        card = render_card(repo_id=self.repo_id, records=records, info=info, data_files=data_files,
                           pretty_name=self.pretty_name, license=self.license, language=self.language,
                           task_categories=self.task_categories)
        card_path = ctx.stage_dir / "README.md"
        atomic_write_text(card_path, card)
        ctx.summary.update({"repo_id": self.repo_id, "card": str(card_path), "private": self.private,
                            "files": {k: str(v) for k, v in data_files.items()}, "dry_run": self.dry_run})
        if self.dry_run:
            ctx.log.info("publish: dry run, card written to %s", card_path)
            return records
        ctx.summary.update(self._upload(card, data_files))
        return records

    def _upload(self, card: str, data_files: dict[str, Path]) -> dict[str, str]:
        token = os.environ.get(self.token_env, "").strip()
        if not token:
            raise StageError(f"publish: no Hugging Face token in ${self.token_env}; export {self.token_env}=... "
                             f"(a write token; it is read from the environment only), or write only the "
                             f"card with +publish.dry_run=true")
        from huggingface_hub import CommitOperationAdd, HfApi, constants
        from huggingface_hub.errors import HfHubHTTPError

        if constants.is_offline_mode():
            raise StageError("publish: HF_HUB_OFFLINE is set; unset it to upload to the Hub")
        endpoint = (self.endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None
        api = HfApi(endpoint=endpoint, token=token)
        operations = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode("utf-8"))]
        operations += [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path))
                       for name, path in data_files.items()]
        try:
            repo_url = api.create_repo(self.repo_id, repo_type="dataset", private=self.private, exist_ok=True)
            commit = api.create_commit(self.repo_id, operations, commit_message=self.commit_message,
                                       repo_type="dataset")
        except (HfHubHTTPError, OSError, ValueError) as exc:
            message = (str(exc).splitlines() or [type(exc).__name__])[0].replace(token, "<redacted>")
            raise StageError(f"publish: upload to {self.repo_id} failed: {message}") from None
        return {"url": str(repo_url), "commit": commit.oid, "commit_url": commit.commit_url}
