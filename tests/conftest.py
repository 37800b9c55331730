"""Shared fixtures: offline environment and a small real LanceDB chunk table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HDF5_PASSAGES = [
    ("Groups", "An HDF5 file is a container for two kinds of objects: datasets, which are array-like "
     "collections of data, and groups, which are folder-like containers that hold datasets and other groups."),
    ("Datasets", "Datasets are very similar to NumPy arrays. They are homogeneous collections of data "
     "elements, with an immutable datatype and a hyperrectangular shape."),
    ("Chunking", "Chunked storage splits a dataset into regular blocks called chunks that are stored "
     "separately in the file. Chunking is required for compression and for resizable datasets."),
    ("Attributes", "Attributes are small named pieces of data attached directly to groups and datasets. "
     "They are the official way to store metadata in HDF5."),
]


def write_chunk_db(db: Path, passages=HDF5_PASSAGES, table: str = "text_chunks") -> Path:
    """Write a real LanceDB table of chunks (one per passage) and return the database path."""
    import lancedb

    from synthrun.ingest.store import schema

    rows = []
    for i, (title, text) in enumerate(passages):
        rows.append({
            "id": f"chunk-{i}", "text": text, "source": f"docs/{title.lower()}.rst", "kind": "text",
            "title": title, "section": title, "start": 0, "end": len(text), "language": "",
            "file_hash": f"h{i}", "chunker": "test",
        })
    conn = lancedb.connect(str(db))
    conn.create_table(table, data=rows, schema=schema(), mode="overwrite")
    return db


@pytest.fixture
def chunk_db(tmp_path) -> Path:
    return write_chunk_db(tmp_path / "chunks.lancedb")


# Fine-tuning (tests/finetune, tests/stages/test_train.py): a tiny Llama with SmolLM2's tokenizer, demo QA rows.
@pytest.fixture(scope="session")
def tiny_llama_session(tmp_path_factory) -> Path:
    from tests.finetune.tiny import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture
def tiny_llama(tiny_llama_session, tmp_path) -> Path:
    """A private copy of the tiny Llama (tests may write next to it)."""
    import shutil

    target = tmp_path / "tiny-llama"
    shutil.copytree(tiny_llama_session, target)
    return target


@pytest.fixture
def small_qa(tmp_path) -> Path:
    """16 demo QA records (QAPair rows with provenance chunk ids, recipes/data/demo_qa.jsonl) as JSONL."""
    from tests.finetune.tiny import DEMO_QA

    path = tmp_path / "qa16.jsonl"
    path.write_text("".join(DEMO_QA.read_text().splitlines(keepends=True)[:16]))
    return path
