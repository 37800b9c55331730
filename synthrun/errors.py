"""The one error family of synthrun, at the bottom of the import graph (imports nothing of synthrun).

Every error a user may see is a :class:`SynthrunError` whose message is one line saying what is wrong
and where; the CLI prints it as ``synthrun: error: ...`` and exits non-zero.
"""

from __future__ import annotations


class SynthrunError(Exception):
    """Base of every error synthrun reports as one line."""


class StageError(SynthrunError):
    """A problem with a stage's input or parameters, reported as one line."""
