"""Crash-safe file writing: atomic replace, and JSONL that never breaks a reader."""

from __future__ import annotations

import errno
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from synthrun.errors import SynthrunError

#: errno values that mean "the disk or folder cannot take this write" (not a bad input).
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EIO, errno.EFBIG,
                  errno.ENOTDIR}


class StorageError(SynthrunError):
    """A write that failed for lack of space or permission; shown as one line naming the path and errno."""

    def __init__(self, path: str | Path, reason: str, code: str = ""):
        self.path, self.reason, self.code = str(path), reason, code
        super().__init__(f"cannot write {path}: {reason}" + (f" ({code})" if code else ""))

    @classmethod
    def with_message(cls, message: str) -> StorageError:
        err = cls("", "")
        err.args = (message,)
        return err

    @classmethod
    def from_os(cls, exc: OSError, path: str | Path | None = None) -> StorageError:
        code = errno.errorcode.get(exc.errno or 0, "")
        return cls(path or exc.filename or "?", exc.strerror or str(exc), code)


def is_storage_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


_umask_lock = threading.Lock()


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file (0o666 minus the umask)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename (mode follows the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600; data files read like config and logs
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # write/fsync errors do not say which file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> int:
    """Atomically write rows (dicts or pydantic models) as JSONL; return the count."""
    lines = []
    for row in rows:
        if hasattr(row, "model_dump"):
            row = row.model_dump(mode="json")
        lines.append(dumps(row))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield rows; a torn last line (no newline, bad JSON) from a crash is skipped."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                if not line.endswith("\n"):
                    return  # torn tail of an interrupted append
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(path))
