"""Ctrl-C, SIGTERM and SIGHUP (a closed terminal, a dropped ssh session): each stops a
run and keeps its work (exit 128 + the signal's number: 130, 143, 129); a signal that
arrives while the picture is being saved waits for the save.

Installed first thing in :func:`impasto.cli.main`, before torch is imported. During the
start-up imports signals are held (noted, not raised): an exception raised inside
torch's import of its native modules could abort the process (``std::terminate``) or
leave a half-imported module behind; once the imports are done a noted signal ends the
run before its first step."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Signals:
    def __init__(self) -> None:
        self.received: int | None = None
        self._holding = 0

    def install(self) -> None:
        """Handle SIGINT, SIGTERM and SIGHUP, except one this process was started ignoring
        (a background job, ``nohup``): that stays ignored, as the shell asked."""
        self.received = None
        self._previous = {signum: signal.getsignal(signum) for signum in HANDLED}
        for signum in HANDLED:
            if self._previous[signum] is not signal.SIG_IGN:
                signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the handlers there were before :meth:`install` (a caller in-process)."""
        for signum, handler in getattr(self, "_previous", {}).items():
            signal.signal(signum, handler)

    def ignore(self) -> None:
        """From now on signals are ignored: the process is ending, its work is saved (a
        signal during the interpreter's own shutdown would otherwise kill it by default)."""
        for signum in HANDLED:
            signal.signal(signum, signal.SIG_IGN)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = self.received or signum
        if first and not self._holding:
            raise KeyboardInterrupt
        # A second signal, or one during a save: noted (the first decides the exit code).

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Signals arriving inside are noted, not raised: a save runs to its end."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1

    def exit_code(self) -> int:
        return 128 + (self.received or signal.SIGINT)

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal arrived and was swallowed somewhere."""
        if self.received is not None and not self._holding:
            raise KeyboardInterrupt

    def at_step(self, done: bool) -> None:
        """A run's per-step callback: a signal noted but not raised where it landed (inside
        a save, or swallowed by a C extension's callback) stops the run at its next step,
        not at the end of the picture or frame (``done``: the run's last event, after its
        steps, where there is nothing left to stop)."""
        if not done:
            self.check()


SIGNALS = Signals()
