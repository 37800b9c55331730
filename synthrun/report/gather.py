"""What a run's report shows, read from its folder: metrics, stage summaries, aggregates and samples.

Rows are streamed, never all held: score histograms and ROC points are counts per distinct
value, and the kept / dropped rows shown are reservoir samples of raw lines (only the sampled
lines are parsed), so a 100,000-row run renders as fast as it reads its files.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

SAMPLE_ROWS = 12
TEXT_LIMIT = 600
JSON_LIMIT = 3000
PEEK_ROWS = 20
SCORE_GROUPS = ("rating", "multi_score")
SCORE_KEYS = ("score", "judge_score")
SIDE_FILES = ("rejected.jsonl", "dropped.jsonl")
REASON_KEYS = ("rejected_reason", "dropped_reason", "drop_reason", "reason")
_STAGE_DIR = re.compile(r"^(\d+)_(.+)$")


class ReportError(Exception):
    """A folder that is neither a run nor a sweep (reported as one line)."""


def stage_dirs(run_dir: Path) -> list[tuple[str, Path]]:
    """``(stage name, folder)`` of every ``NN_name`` folder, in run order."""
    found = []
    for p in run_dir.iterdir():
        m = _STAGE_DIR.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), m.group(2), p))
    return [(name, p) for _, name, p in sorted(found)]


def raw_lines(path: Path) -> Iterator[bytes]:
    """Non-empty lines of a JSONL file (missing file: nothing)."""
    if not path.is_file():
        return
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield line


def parse(line: bytes) -> dict[str, Any] | None:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None  # a torn last line of an interrupted append
    return row if isinstance(row, dict) else None


def rows(path: Path) -> Iterator[dict[str, Any]]:
    for line in raw_lines(path):
        row = parse(line)
        if row is not None:
            yield row


def sample_lines(path: Path, k: int, seed: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Count the rows of ``path`` and reservoir-sample ``k`` of them, returned in file order.

    Algorithm L (Li 1994): random numbers are drawn only for the lines that enter the sample,
    so a 100,000-line file costs little more than reading it; only sampled lines are parsed.
    """
    rng = random.Random(seed)
    picked: list[tuple[int, bytes]] = []
    n = 0
    if k <= 0:
        return sum(1 for _ in raw_lines(path)), []
    w = math.exp(math.log(1.0 - rng.random()) / k)
    nxt = k + int(math.log(1.0 - rng.random()) / math.log(1.0 - w)) + 1 if w < 1 else k + 1
    for n, line in enumerate(raw_lines(path), 1):
        if n <= k:
            picked.append((n, line))
        elif n == nxt:
            picked[rng.randrange(k)] = (n, line)
            w *= math.exp(math.log(1.0 - rng.random()) / k)
            nxt += int(math.log(1.0 - rng.random()) / math.log(1.0 - w)) + 1 if w < 1 else 1
    out = [r for _, line in sorted(picked) if (r := parse(line)) is not None]
    return n, out


def score_values(row: dict[str, Any]) -> dict[str, float]:
    """Numeric scores of a row: ``rating.*``, ``multi_score.*``, ``score``, ``judge_score``."""
    out = {}
    for group in SCORE_GROUPS:
        sub = row.get(group)
        if isinstance(sub, dict):
            for k, v in sub.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    out[f"{group}.{k}"] = float(v)
    for k in SCORE_KEYS:
        v = row.get(k)
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def label_value(v: Any) -> int | None:
    """A binary label (True/1/"good"/"pass"/"positive" -> 1), or None."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float) and v in (0, 1):
        return int(v)
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("1", "true", "good", "pass", "positive", "yes", "correct", "accept"):
            return 1
        if s in ("0", "false", "bad", "fail", "negative", "no", "incorrect", "reject"):
            return 0
    return None


def reason_of(row: dict[str, Any]) -> str:
    for k in REASON_KEYS:
        if row.get(k):
            return str(row[k])
    meta = row.get("metadata")
    if isinstance(meta, dict):
        for k in ("curation", "verification", "evaluation"):
            sub = meta.get(k)
            if isinstance(sub, dict) and sub.get("reason"):
                return str(sub["reason"])
        if meta.get("format_ok") is False:
            return "format check failed"
        if meta.get("execution_ok") is False:
            failed = next((s for s in row.get("reasoning_path") or [] if isinstance(s, dict) and s.get("ok") is False),
                          None)
            return f"step {failed.get('step')}: {failed.get('error')}" if failed else "execution failed"
    return ""


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def sample_view(row: dict[str, Any]) -> dict[str, Any]:
    """What a sample row shows: id, request, response, score, reason, and the JSON (all clipped)."""
    from synthrun.textfields import prompt_text, response_text

    try:
        ask, answer = prompt_text(row), response_text(row)
    except Exception:  # noqa: BLE001 - an odd row shape still shows its JSON
        ask, answer = "", ""
    if not ask and not answer:  # a chunk or a tool record
        tool = row.get("tool")
        ask = str(row.get("text") or row.get("name") or (tool.get("name") if isinstance(tool, dict) else "") or "")
    scores = score_values(row)
    score = scores.get("rating.total", scores.get("multi_score.combined", scores.get("score")))
    return {
        "id": str(row.get("id") or ""), "ask": _clip(ask, TEXT_LIMIT), "answer": _clip(answer, TEXT_LIMIT),
        "score": score, "reason": _clip(reason_of(row), 300),
        "json": _clip(json.dumps(row, ensure_ascii=False, indent=1, default=str), JSON_LIMIT),
    }


def bins_of(counts: Counter, field: str) -> list[tuple[float, float, int]]:
    """Histogram bins over the counted values: integer scores get one bin per value, others 20 bins."""
    if not counts:
        return []
    lo, hi = min(counts), max(counts)
    if all(float(v).is_integer() for v in counts) and hi - lo <= 30:
        lo_i, hi_i = int(lo), int(hi)
        if field.endswith(".total") or field.startswith("multi_score"):
            lo_i, hi_i = min(lo_i, 0), max(hi_i, 10)
        elif field.startswith(SCORE_GROUPS):
            lo_i = min(lo_i, 0)
        return [(v - 0.5, v + 0.5, int(counts.get(float(v), 0))) for v in range(lo_i, hi_i + 1)]
    if field.startswith("multi_score") or field.endswith(".total"):
        lo, hi = min(lo, 0.0), max(hi, 10.0)
    width = (hi - lo) / 20 or 1.0
    out = [[lo + i * width, lo + (i + 1) * width, 0] for i in range(20)]
    for v, c in counts.items():
        out[min(19, int((v - lo) / width))][2] += c
    return [tuple(b) for b in out]


def roc_points(pairs: Counter) -> dict[str, Any] | None:
    """ROC curve and AUC from counts of ``(label, score)``; None without both classes."""
    pos = sum(c for (lab, _), c in pairs.items() if lab == 1)
    neg = sum(c for (lab, _), c in pairs.items() if lab == 0)
    if not pos or not neg:
        return None
    by_score: dict[float, list[int]] = {}
    for (lab, s), c in pairs.items():
        by_score.setdefault(s, [0, 0])[lab] += c
    fpr, tpr, tp, fp, auc = [0.0], [0.0], 0, 0, 0.0
    for s in sorted(by_score, reverse=True):
        n_neg, n_pos = by_score[s]
        auc += n_neg * (tp + n_pos / 2)  # positives ranked above each negative (ties count half)
        tp, fp = tp + n_pos, fp + n_neg
        fpr.append(fp / neg)
        tpr.append(tp / pos)
    return {"fpr": fpr, "tpr": tpr, "auc": round(auc / (pos * neg), 4), "positives": pos, "negatives": neg}


def roc_from_summary(obj: Any) -> dict[str, Any] | None:
    """ROC points a stage wrote itself: ``roc: {fpr: [...], tpr: [...]}`` or ``[[fpr, tpr], ...]``."""
    if not isinstance(obj, dict):
        return None
    for key in ("roc", "roc_curve"):
        roc = obj.get(key)
        fpr = tpr = None
        if isinstance(roc, dict) and isinstance(roc.get("fpr"), list) and isinstance(roc.get("tpr"), list):
            fpr, tpr = roc["fpr"], roc["tpr"]
        elif isinstance(roc, list) and roc and all(isinstance(p, list | tuple) and len(p) == 2 for p in roc):
            fpr, tpr = [p[0] for p in roc], [p[1] for p in roc]
        elif isinstance(roc, list) and roc and all(isinstance(p, dict) and "fpr" in p for p in roc):
            fpr, tpr = [p["fpr"] for p in roc], [p["tpr"] for p in roc]
        if fpr and tpr and len(fpr) == len(tpr):
            auc = obj.get("auc", obj.get("roc_auc"))
            if isinstance(roc, dict):
                auc = roc.get("auc", auc)
            return {"fpr": [float(x) for x in fpr], "tpr": [float(x) for x in tpr],
                    "auc": float(auc) if isinstance(auc, int | float) else None}
    for v in obj.values():
        if isinstance(v, dict) and (found := roc_from_summary(v)):
            return found
    return None


def load_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def thresholds(stage_cfg: dict[str, Any], field: str) -> tuple[float | None, dict[str, tuple[float, float]]]:
    """The threshold line and PASS / NEEDS_REVIEW / FAIL bands of one score field of a stage.

    ``rating.total``: PASS from the stage's ``pass_threshold`` or ``threshold``, NEEDS_REVIEW from
    ``review_threshold`` (default 5, as in the validate stage); ``multi_score.combined``: the
    threshold of a threshold strategy. Other fields: none.
    """
    if field == "rating.total":
        pas = stage_cfg.get("pass_threshold", stage_cfg.get("threshold"))
        if not isinstance(pas, int | float):
            return None, {}
        review = stage_cfg.get("review_threshold", 5.0)
        review = min(float(review), float(pas)) if isinstance(review, int | float) else float(pas)
        return float(pas), {"FAIL": (-1e9, review), "NEEDS_REVIEW": (review, float(pas)), "PASS": (float(pas), 1e9)}
    if field == "multi_score.combined" and stage_cfg.get("strategy", "threshold") in ("threshold", "combined"):
        t = stage_cfg.get("threshold")
        return (float(t), {}) if isinstance(t, int | float) else (None, {})
    return None, {}
