"""Parts shared by the stages that generate records from chunks (QA pairs, chain-of-thought examples)."""

from __future__ import annotations

from synthrun.records import Chunk, Provenance


def allocate(n_chunks: int, n_pairs: int | None, target_pairs: int | None) -> list[int]:
    """How many pairs each chunk gets: ``n_pairs`` each, or ``target_pairs`` spread evenly."""
    if n_chunks == 0:
        return []
    if target_pairs is None:
        return [n_pairs if n_pairs is not None else 1] * n_chunks
    base, extra = divmod(target_pairs, n_chunks)
    if base == 0:  # fewer pairs than chunks: spread them over the whole list
        picked = {int(i * n_chunks / target_pairs) for i in range(target_pairs)}
        return [1 if i in picked else 0 for i in range(n_chunks)]
    return [base + (1 if i < extra else 0) for i in range(n_chunks)]


def chunk_provenance(chunk: Chunk, *, keep_source_text: bool, model: str, prompt: str, run_id: str,
                     stage: str) -> Provenance:
    """Provenance of a record generated from ``chunk`` (its text kept only with ``keep_source_text``)."""
    return Provenance.model_validate({
        "chunk_id": chunk.id, "source": chunk.source, "table": chunk.table,
        "source_text": chunk.text if keep_source_text else None, "model": model, "prompt": prompt,
        "run_id": run_id, "stage": stage})
