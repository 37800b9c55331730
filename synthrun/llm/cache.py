"""Persistent LLM answer cache: one SQLite file (WAL), one commit per stored answer."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from synthrun.llm.jsonparse import dumps, loads

# Parameters that never belong in a cache key: credentials, endpoints, transport knobs.
_SECRET_LIKE = re.compile(r"key|token|secret|password|auth|header|api_base|base_url|url|cookie", re.I)
_NOT_SAMPLING = {"timeout", "num_retries", "max_retries", "stream", "drop_params", "metadata", "user"}


def key_params(params: dict[str, Any]) -> dict[str, Any]:
    """The subset of request parameters that may change an answer (no secrets, no transport knobs)."""
    return {k: v for k, v in params.items() if k not in _NOT_SAMPLING and not _SECRET_LIKE.search(k)}


def request_key(model: str, messages: list[dict[str, Any]], schema_json: Any, params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines an answer."""
    payload = {"model": model, "messages": messages, "schema": schema_json, "params": key_params(params)}
    return hashlib.sha256(dumps(payload, sort_keys=True)).hexdigest()


class ResponseCache:
    """Valid LLM answers keyed by :func:`request_key`, safe to share between processes.

    WAL journal with ``synchronous=NORMAL``: every ``put`` is its own committed transaction, so
    a killed process loses nothing it had already stored (only an OS crash could lose the
    last commits).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT, value BLOB NOT NULL, created REAL)"
        )

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the stored answer for ``key`` or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
        return loads(row[0]) if row else None

    def put(self, key: str, model: str, value: dict[str, Any]) -> None:
        """Store (or replace) one answer and commit it."""
        blob = dumps(value)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers (key, model, value, created) VALUES (?, ?, ?, ?)",
                (key, model, blob, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
