"""Persistent LLM answer cache: one SQLite file (WAL), one commit per stored answer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from synthrun.io import StorageError
from synthrun.llm.jsonparse import dumps, loads
from synthrun.llm.provider_config import TRANSPORT_FIELDS

log = logging.getLogger(__name__)

# Parameters that never belong in a cache key: credentials, endpoints, transport knobs (the provider's
# TRANSPORT_FIELDS and the request options below).
_SECRET_LIKE = re.compile(r"key|token|secret|password|auth|header|api_base|base_url|url|cookie", re.I)
_NOT_SAMPLING = {"timeout", "num_retries", "max_retries", "stream", "drop_params", "metadata", "user"}


def key_params(params: dict[str, Any]) -> dict[str, Any]:
    """The subset of request parameters that may change an answer (no secrets, no transport knobs)."""
    return {k: v for k, v in params.items()
            if k not in _NOT_SAMPLING and k not in TRANSPORT_FIELDS and not _SECRET_LIKE.search(k)}


def request_key(model: str, messages: list[dict[str, Any]], schema_json: Any, params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines an answer."""
    payload = {"model": model, "messages": messages, "schema": schema_json, "params": key_params(params)}
    return hashlib.sha256(dumps(payload, sort_keys=True)).hexdigest()


def _use_wal(db: sqlite3.Connection, wait: float = 30.0) -> None:
    """Switch ``db`` to the WAL journal. SQLite does not wait (busy timeout) on a journal-mode change:
    when two processes open a new cache at the same moment (the jobs of a parallel sweep), one of them
    gets "database is locked" at once, so the switch is retried for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _storage_error(path: Path, exc: BaseException) -> StorageError:
    if isinstance(exc, OSError):
        return StorageError.from_os(exc, path)
    return StorageError(path, str(exc), getattr(exc, "sqlite_errorname", "") or "")


def spill_path(cache_path: Path) -> Path:
    """Where answers go when the cache cannot store them (a temp folder, keyed by the cache's path)."""
    digest = hashlib.sha256(str(Path(cache_path).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "synthrun-unsaved" / f"{digest}.jsonl"


class ResponseCache:
    """Valid LLM answers keyed by :func:`request_key`, safe to share between processes.

    WAL journal with ``synchronous=NORMAL``: every ``put`` is its own committed transaction, so
    a killed process loses nothing it had already stored (only an OS crash could lose the
    last commits). A ``put`` that fails (disk full, read-only) raises :class:`StorageError`;
    :meth:`spill` then keeps the answer in a temp file that the next open of the same cache
    imports, so an answer that was paid for is never lost.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._spilled: dict[str, dict[str, Any]] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
            _use_wal(self._db)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT, value BLOB NOT NULL, "
                "created REAL)"
            )
        except (sqlite3.OperationalError, OSError) as exc:
            raise _storage_error(self.path, exc) from None
        self._import_spill()

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the stored answer for ``key`` or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM answers WHERE key = ?", (key,)).fetchone()
        if row:
            value: dict[str, Any] = loads(row[0])
            return value
        return self._spilled.get(key)

    def _insert(self, rows: list[tuple[str, str, bytes, float]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO answers (key, model, value, created) VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def put(self, key: str, model: str, value: dict[str, Any]) -> None:
        """Store (or replace) one answer and commit it (:class:`StorageError` when the disk refuses)."""
        blob = dumps(value)
        with self._lock:
            try:
                self._insert([(key, model, blob, time.time())])
            except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
                raise _storage_error(self.path, exc) from None

    def spill(self, key: str, model: str, value: dict[str, Any]) -> Path | None:
        """Keep an answer the cache could not store: in memory and appended to :func:`spill_path`."""
        self._spilled[key] = value
        target = spill_path(self.path)
        line = json.dumps({"key": key, "model": model, "value": value}, ensure_ascii=False) + "\n"
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError:
            return None
        return target

    def _import_spill(self) -> None:
        """Store the answers an earlier run could not write (see :meth:`spill`), then drop the file."""
        source = spill_path(self.path)
        if not source.is_file():
            return
        rows: list[tuple[str, str, bytes, float]] = []
        for line in source.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash
            self._spilled[row["key"]] = row["value"]
            rows.append((row["key"], row["model"], dumps(row["value"]), time.time()))
        try:
            with self._lock:
                self._insert(rows)
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as exc:
            log.warning("%d unsaved answers from an earlier run stay in %s (%s)", len(rows), source, exc)
            return
        source.unlink(missing_ok=True)
        self._spilled.clear()
        log.info("stored %d answers an earlier run could not write (from %s)", len(rows), source)

    def __len__(self) -> int:
        with self._lock:
            count: int = self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
            return count

    def close(self) -> None:
        with self._lock:
            self._db.close()
