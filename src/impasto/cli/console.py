"""Messages on standard error, for every command (kept apart from the parser, which
imports every command)."""

from __future__ import annotations

import contextlib
import sys


def say(text: str, end: str = "\n") -> None:
    """A message on standard error, at once; nothing when it cannot be written (closed,
    a reader that left): the work goes on."""
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(text + end)
            sys.stderr.flush()
