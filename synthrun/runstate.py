"""A run folder's live state: the lock that keeps a second run out, and metrics.json with a heartbeat.

The lock is an ``fcntl`` lock on ``RUN_DIR/.lock``: the kernel drops it when its process ends in
any way (even ``kill -9``), so a stale lock cannot block a later run. The file holds the
holder's pid, host and start time, which the refusal names.

While a run works, :class:`LiveMetrics` rewrites ``metrics.json`` (``status: running``) at every
stage and every ``HEARTBEAT_S`` seconds with a fresh ``heartbeat`` time, so a run that was killed
shows ``running`` with an old heartbeat.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from synthrun.errors import SynthrunError
from synthrun.io import StorageError, is_storage_error, write_json

LOCK_FILE = ".lock"
HEARTBEAT_S = 10.0


class RunFolderBusy(SynthrunError):
    """Another process holds the run folder's lock (reported as one line)."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunLock:
    """Exclusive lock of one run folder for the life of a run (use as a context manager)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock, as before
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if is_storage_error(exc):
                raise StorageError.from_os(exc, self.path) from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunFolderBusy(
                f"run folder {self.path.parent} is in use by {holder}; wait for that run to finish "
                f"(or stop it), or choose another folder with run_name=..."
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": now_iso()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock; the file stays (removing it would race)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} (started {info.get('started')})"


def previous_status(path: Path) -> dict[str, Any]:
    """``status`` and ``heartbeat`` of an earlier metrics file ({} when there is none)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: data.get(k) for k in ("status", "heartbeat")} if isinstance(data, dict) else {}


class LiveMetrics:
    """Writes the run's metrics to ``path`` now and then; a thread refreshes the heartbeat meanwhile.

    ``path`` can change (:meth:`move_to`): a rerun into a completed folder reports to a side file
    until it really replaces data, so a failed attempt leaves the finished run's metrics alone.
    """

    def __init__(self, path: Path, interval: float = HEARTBEAT_S):
        self.path = path
        self.interval = interval
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.fallback: Path | None = None

    def start(self) -> LiveMetrics:
        self._thread = threading.Thread(target=self._beat, name="synthrun-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def move_to(self, path: Path) -> None:
        with self._lock:
            old, self.path = self.path, path
        if old != path:
            old.unlink(missing_ok=True)

    def write(self, data: dict[str, Any], final: bool = False) -> None:
        """Write ``data`` (a RunMetrics dump) now, stamping its heartbeat.

        A final write that the run folder refuses goes to a temp file instead (:attr:`fallback`).
        """
        data = {**data, "heartbeat": now_iso()}
        with self._lock:
            self._snapshot = data
            try:
                write_json(self.path, data)
            except OSError as exc:
                if not final:
                    return  # the next write may work; the final one must land somewhere
                fd, tmp = tempfile.mkstemp(prefix=f"synthrun-metrics-{self.path.parent.name[:40]}-", suffix=".json")
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump({**data, "metrics_error": str(exc)}, fh, indent=2, default=str)
                self.fallback = Path(tmp)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self._snapshot is None:
                    continue
                self._snapshot["heartbeat"] = now_iso()
                try:
                    write_json(self.path, self._snapshot)
                except OSError:
                    pass  # the final write reports storage problems

