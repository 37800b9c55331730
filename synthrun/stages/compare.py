"""Compare several finished datasets: statistics, near-duplicates, an LLM judge, a recommendation."""

from __future__ import annotations

import json
import random
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, StringConstraints

from synthrun.context import StageContext
from synthrun.errors import StageError
from synthrun.formats import read_back
from synthrun.io import atomic_write_text, read_jsonl, write_json
from synthrun.records import Record
from synthrun.stages.llm_stage import LLMStage

Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
_TOKEN = re.compile(r"\w+")


class DatasetJudgeOut(BaseModel):
    """The judge's verdict on a sample of one dataset."""

    score: float = Field(ge=0, le=10)
    strengths: list[Note] = Field(default_factory=list, max_length=6)
    weaknesses: list[Note] = Field(default_factory=list, max_length=6)
    summary: str = Field(default="", max_length=400)


def to_example(row: dict[str, Any]) -> dict[str, Any] | None:
    """Read one dataset row back to a plain example, whatever format it was written in.

    Every format module of :mod:`synthrun.formats` reads its own rows back (synthrun records,
    ChatML, ShareGPT, Alpaca, Alpaca text, the tool-use formats ...); the row's optional
    ``metadata`` (id, provenance, rating) is read here.

    Returns:
        ``{"format", "question", "answer", "reasoning", "source", "question_type", "rating"}``
        (``format`` is ``record`` for a synthrun record; ``rating`` is the total or None), or None
        for a row of no known shape.
    """
    found = read_back(row)
    if found is None:
        return None
    fmt, got = found
    meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
    prov = row.get("provenance") or meta.get("provenance") or {}
    rating = row.get("rating") or meta.get("rating") or {}
    total = rating.get("total") if isinstance(rating, dict) else None
    return {
        "format": "record" if fmt == "jsonl" else fmt, "question": got.question.strip(),
        "answer": got.answer.strip(), "reasoning": got.reasoning,
        "source": (prov.get("source") if isinstance(prov, dict) else None) or row.get("source") or None,
        "question_type": row.get("question_type") or meta.get("question_type") or None,
        "rating": float(total) if isinstance(total, (int, float)) else None,
    }


def read_dataset(path: str | Path) -> list[dict[str, Any]]:
    """Read a dataset file (JSONL, a JSON array, or a run's stage folder) as :func:`to_example` dicts.

    Raises:
        StageError: Missing or empty file, or a row of unknown shape (with its line number).
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "data.jsonl"
    if not p.is_file():
        raise StageError(f"compare: dataset file not found: {p}")
    try:
        if p.suffix == ".json":
            rows = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(rows, list):
                raise StageError(f"compare: {p}: a .json dataset must be a JSON array of rows")
        else:
            rows = read_jsonl(p)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StageError(f"compare: {p}: {exc}") from None
    examples = []
    for i, row in enumerate(rows, 1):
        ex = to_example(row) if isinstance(row, dict) else None
        if ex is None:
            keys = sorted(row)[:8] if isinstance(row, dict) else type(row).__name__
            raise StageError(f"compare: {p}:{i}: row has no question/answer in any known format (keys {keys})")
        examples.append(ex)
    if not examples:
        raise StageError(f"compare: {p} is empty")
    return examples


def near_duplicate_rate(texts: list[str], threshold: float = 0.7, ngram: int = 5, num_perm: int = 128) -> float:
    """Share of ``texts`` that :class:`~synthrun.stages.dedup.Dedup` would remove as duplicates.

    Uses Dedup's own passes (:mod:`synthrun.minhash`) (exact after normalisation, then MinHash LSH on character
    n-grams verified by exact Jaccard >= ``threshold``); each group of duplicates keeps one text.
    """
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from synthrun.minhash import near_duplicate_pairs

    n = len(texts)
    if n < 2:
        return 0.0
    edges = near_duplicate_pairs(texts, threshold, ngram, num_perm)
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    groups, _ = connected_components(graph, directed=False)
    return round((n - groups) / n, 4)


def dataset_stats(examples: list[dict[str, Any]], threshold: float = 0.7, ngram: int = 5,
                  num_perm: int = 128) -> dict[str, Any]:
    """Count, mean rating, source diversity, question-type mix, CoT share, lengths, near-duplicate rate."""
    n = len(examples)
    ratings = [e["rating"] for e in examples if e["rating"] is not None]
    sources = {e["source"] for e in examples if e["source"]}
    with_source = sum(1 for e in examples if e["source"])
    types = Counter(e["question_type"] for e in examples if e["question_type"])
    openers = Counter((_TOKEN.findall(e["question"].lower()) or ["?"])[0] for e in examples)
    return {
        "count": n,
        "format": Counter(e["format"] for e in examples).most_common(1)[0][0],
        "rated": len(ratings),
        "mean_rating": round(statistics.fmean(ratings), 3) if ratings else None,
        "distinct_sources": len(sources),
        "source_diversity": round(len(sources) / n, 4) if with_source else None,
        "question_types": dict(types.most_common()),
        "question_openers": dict(openers.most_common(8)),
        "cot_share": round(sum(1 for e in examples if e["reasoning"]) / n, 4),
        "mean_question_chars": round(statistics.fmean(len(e["question"]) for e in examples), 1),
        "mean_answer_chars": round(statistics.fmean(len(e["answer"]) for e in examples), 1),
        "near_duplicate_rate": near_duplicate_rate(
            [f"{e['question']} {e['answer']}" for e in examples], threshold, ngram, num_perm),
    }


def shared_signals(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The quality signals every dataset has (``judge``, ``mean_rating``), so no dataset wins by having more."""
    out = []
    if rows and all((r.get("judge") or {}).get("score") is not None for r in rows):
        out.append("judge")
    if rows and all(r.get("mean_rating") is not None for r in rows):
        out.append("mean_rating")
    return tuple(out)


def overall_score(stats: dict[str, Any], signals_used: tuple[str, ...] = ("judge", "mean_rating")) -> float | None:
    """Quality (mean of the judge score and the mean rating, of those in ``signals_used`` that exist)
    times (1 - near-duplicate rate)."""
    judge = (stats.get("judge") or {}).get("score") if "judge" in signals_used else None
    rating = stats.get("mean_rating") if "mean_rating" in signals_used else None
    signals = [x for x in (judge, rating) if x is not None]
    if not signals:
        return None
    return round(statistics.fmean(signals) * (1 - stats["near_duplicate_rate"]), 3)


def _describe(stats: dict[str, Any]) -> str:
    parts = []
    judge = stats.get("judge") or {}
    if judge.get("score") is not None:
        parts.append(f"judge {judge['score']:g}/10")
    if stats.get("mean_rating") is not None:
        parts.append(f"mean rating {stats['mean_rating']:g}")
    parts.append(f"{stats['near_duplicate_rate']:.0%} near-duplicates")
    if stats.get("source_diversity") is not None:
        parts.append(f"{stats['distinct_sources']} sources in {stats['count']} examples")
    else:
        parts.append(f"{stats['count']} examples")
    return ", ".join(parts)


def recommend(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """Pick the dataset with the best :func:`overall_score` (ties: more examples) and say why."""
    def key(r: dict[str, Any]) -> tuple[float, float, int]:
        score = r["overall_score"]
        # Without any quality signal, fewer duplicates then more examples decide.
        return (score if score is not None else -1.0, -r["near_duplicate_rate"], r["count"])

    ranked = sorted(rows, key=key, reverse=True)
    best = ranked[0]
    if best["overall_score"] is None:
        why = (f"no dataset has ratings or a judge score; {best['name']} has the fewest near-duplicates "
               f"and the most examples ({_describe(best)})")
    else:
        why = f"highest overall score {best['overall_score']:g} ({_describe(best)})"
    others = [f"{r['name']}: {r['overall_score'] if r['overall_score'] is not None else 'n/a'} ({_describe(r)})"
              for r in ranked[1:]]
    if others:
        why += "; then " + "; ".join(others)
    return best["name"], why


def render_markdown(rows: list[dict[str, Any]], best: str, why: str) -> str:
    """The comparison report as Markdown."""
    def fmt(x: Any, pct: bool = False) -> str:
        if x is None:
            return "-"
        return f"{x:.0%}" if pct else f"{x:g}"

    lines = ["# Dataset comparison", "", f"**Recommended: {best}** - {why}.", "",
             "Overall score = mean(judge score, mean rating) x (1 - near-duplicate rate).", "",
             "| dataset | examples | format | mean rating | judge | near-dup | source diversity | CoT | overall |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        judge = (r.get("judge") or {}).get("score")
        lines.append(f"| {r['name']} | {r['count']} | {r['format']} | {fmt(r['mean_rating'])} | {fmt(judge)} | "
                     f"{fmt(r['near_duplicate_rate'], True)} | {fmt(r['source_diversity'])} | "
                     f"{fmt(r['cot_share'], True)} | {fmt(r['overall_score'])} |")
    for r in rows:
        lines += ["", f"## {r['name']}", "", f"- file: `{r['path']}`"]
        mix = r["question_types"] or r["question_openers"]
        label = "question types" if r["question_types"] else "question openers"
        lines.append(f"- {label}: " + ", ".join(f"{k} {v}" for k, v in mix.items()))
        lines.append(f"- mean lengths: question {r['mean_question_chars']:g} chars, "
                     f"answer {r['mean_answer_chars']:g} chars")
        judge = r.get("judge")
        if judge and judge.get("score") is not None:
            lines.append(f"- judge ({judge['sample_size']} samples, {judge['model']}): {judge['score']:g}/10 "
                         f"{judge.get('summary') or ''}".rstrip())
            lines += [f"  - + {s}" for s in judge["strengths"]]
            lines += [f"  - - {w}" for w in judge["weaknesses"]]
        elif judge and judge.get("error"):
            lines.append(f"- judge failed: {judge['error']}")
    return "\n".join(lines) + "\n"


class Compare(LLMStage):
    """Compare dataset files and recommend one (a source stage; it needs no input records).

    Each dataset is a JSONL file of synthrun records (QA, CoT, tool-use; e.g. a stage's
    ``data.jsonl``) or a file in any training format of :mod:`synthrun.formats` (read back to
    question and answer by the format's own module), a JSON array of such rows, or a stage folder. For each one the stage
    computes count, mean rating, source diversity (distinct sources / count), question-type
    mix, chain-of-thought share, lengths and near-duplicate rate (MinHash), asks the LLM judge
    about a random sample, and writes ``report.md`` and ``report.json`` naming the recommended
    dataset. Output: one record per dataset with these statistics.

    Attributes:
        datasets: ``{name: path}``, or a list of paths (named after their file).
        sample_size: Examples per dataset shown to the judge (0 turns the judge off).
        near_dup_threshold: Jaccard similarity of character n-grams at which two examples
            (question + answer) count as near-duplicates (as in ``dedup``).
        ngram: Character n-gram length of the MinHash pass.
        num_perm: MinHash permutations.
        prompt: Judge prompt name (``prompts/compare_judge.yaml``).
        max_chars: Characters of each question/answer shown to the judge.
        max_tokens: Token budget of one judge call.
        temperature: Sampling temperature of the judge.
        seed: Sampling seed; defaults to the run's seed.
    """

    source: ClassVar[bool] = True
    #: The dataset files may change between runs of the same command: always read them again.
    always_run: ClassVar[bool] = True
    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    datasets: dict[str, str] | list[str] | None = None
    sample_size: int = Field(default=5, ge=0, le=50)
    near_dup_threshold: float = Field(default=0.7, gt=0, le=1)
    ngram: int = Field(default=5, ge=1, le=8)
    num_perm: int = Field(default=128, ge=16, le=1024)
    prompt: str = "compare_judge"
    max_chars: int = Field(default=600, ge=50)
    max_tokens: int = Field(default=300, ge=32)
    temperature: float = Field(default=0.0, ge=0, le=2)
    seed: int | None = None

    def named_paths(self) -> dict[str, str]:
        """``datasets`` as ``{name: path}`` (list entries are named after their file stem)."""
        if not self.datasets:
            return {}
        if isinstance(self.datasets, dict):
            return {str(k): str(v) for k, v in self.datasets.items()}
        named: dict[str, str] = {}
        for path in self.datasets:
            p = Path(str(path))
            base = p.parent.name if p.name == "data.jsonl" else p.stem.removesuffix(".jsonl")
            name, i = base, 2
            while name in named:
                name, i = f"{base}_{i}", i + 1
            named[name] = str(path)
        return named

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        named = self.named_paths()
        if len(named) < 1:
            raise StageError("compare: `datasets` is empty; give {name: path} or a list of dataset files, "
                             "e.g. 'compare.datasets={a: a.jsonl, b: b.jsonl}'")
        rows: list[dict[str, Any]] = []
        loaded: dict[str, list[dict[str, Any]]] = {}
        for name, path in named.items():
            examples = read_dataset(path)
            loaded[name] = examples
            rows.append({"name": name, "path": str(path),
                         **dataset_stats(examples, self.near_dup_threshold, self.ngram, self.num_perm)})
        if self.sample_size:
            self._judge(rows, loaded, ctx)
        # Score on what every dataset has: an exported file without ratings is not beaten by
        # a rated one merely because the rated one carries a second signal.
        signals = shared_signals(rows)
        for row in rows:
            row["overall_score"] = overall_score(row, signals)
        best, why = recommend(rows)
        why = f"{why}; overall score from {' and '.join(signals) or 'no shared quality signal'}"
        for row in rows:
            row["recommended"] = row["name"] == best
        report = {"recommended": best, "reason": why, "signals": list(signals), "datasets": rows}
        write_json(ctx.stage_dir / "report.json", report)
        atomic_write_text(ctx.stage_dir / "report.md", render_markdown(rows, best, why))
        ctx.summary.update({"recommended": best, "reason": why})
        ctx.log.info("recommended dataset: %s (%s)", best, why)
        return [Record(id=f"dataset-{row['name']}", **row) for row in rows]

    def _judge(self, rows: list[dict[str, Any]], loaded: dict[str, list[dict[str, Any]]],
               ctx: StageContext) -> None:
        rng = random.Random(ctx.seed if self.seed is None else self.seed)
        items = []
        for row in rows:
            examples = loaded[row["name"]]
            picked = rng.sample(examples, min(self.sample_size, len(examples)))
            samples = [{"question": e["question"][: self.max_chars], "answer": e["answer"][: self.max_chars],
                        "reasoning": [s[: self.max_chars] for s in e["reasoning"]]} for e in picked]
            items.append(((row, len(picked)), {"dataset": row["name"], "samples": samples, "n_total": len(examples)}))
        for res in self.ask(ctx, items, prompt=self.prompt, schema=DatasetJudgeOut, params=self.params(None),
                            desc="judge datasets"):
            row, n = res.request.tag
            if not res.ok:
                ctx.fail(f"judge_{res.error}")
                row["judge"] = {"score": None, "error": res.error, "sample_size": n}
                continue
            out: DatasetJudgeOut = res.parsed  # type: ignore[assignment]
            row["judge"] = {"score": out.score, "strengths": list(out.strengths), "weaknesses": list(out.weaknesses),
                            "summary": out.summary.strip(), "sample_size": n, "model": res.model or ctx.model_name}
