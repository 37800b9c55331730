"""``synthrun report RUN_DIR|SWEEP_DIR [--open] [-o FILE]``: (re)write a report and print its path."""

from __future__ import annotations

import sys
from pathlib import Path

USAGE = "usage: synthrun report RUN_DIR|SWEEP_DIR [--open] [-o FILE]"


def _err(msg: str, code: int = 1) -> int:
    print(f"synthrun: error: {msg}", file=sys.stderr)
    return code


def main(args: list[str]) -> int:
    folder: str | None = None
    out: str | None = None
    open_it = False
    it = iter(args)
    for a in it:
        if a in ("-h", "--help"):
            print(USAGE)
            return 0
        if a == "--open":
            open_it = True
        elif a in ("-o", "--output"):
            out = next(it, None)
            if out is None:
                return _err(f"{a} needs a file name ({USAGE})", 2)
        elif a.startswith("-"):
            return _err(f"unknown option {a} ({USAGE})", 2)
        elif folder is None:
            folder = a
        else:
            return _err(f"one folder only, got {folder} and {a} ({USAGE})", 2)
    if folder is None:
        return _err(USAGE, 2)
    from synthrun.report import ReportError, write_report

    try:
        path = write_report(folder, out)
    except ReportError as exc:
        return _err(str(exc))
    except OSError as exc:
        return _err(f"report of {folder} not written: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    print(path)
    if open_it:
        import webbrowser

        if not webbrowser.open(Path(path).resolve().as_uri()):
            print(f"no browser found; open {Path(path).resolve().as_uri()}", file=sys.stderr)
    return 0
